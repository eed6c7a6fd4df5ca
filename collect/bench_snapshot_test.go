package collect_test

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/sync/errgroup"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/collect"
	"github.com/eksir/eksir/internal/labtest"
)

// benchInstances and benchVolumes are the figure: 50 instances
// with 3 EBS volumes each.
const (
	benchInstances = 50
	benchVolumes   = 3
	// benchLimit bounds the instances eksir snapshots at once.
	benchLimit = 16
)

// BenchmarkSnapshots snapshots every volume of 50 instances (3 volumes
// each) per iteration, on the same moto account in one run: eksir's
// collect.ebs-snapshot on each instance with bounded concurrency (it also
// looks for earlier snapshots, tags, waits and reads back, and writes a
// descriptor per snapshot), against the AWS CLI's create-snapshots run
// once per instance, one by one (no tags, no wait, no read-back). moto
// completes snapshots at once, so neither figure contains EBS's own time.
func BenchmarkSnapshots(b *testing.B) {
	s := labtest.SeedScenario(b, benchInstances, 1, collect.Register)
	s.Env.AWS = s.Lab.AWS
	e := ec2.NewFromConfig(s.Lab.AWS)
	ids := benchThirdVolume(b, e)
	a, _ := s.Registry.Lookup("collect.ebs-snapshot")
	round, cliRounds := 0, 0

	b.Run("eksir", func(b *testing.B) {
		for b.Loop() {
			round++
			env := *s.Env
			env.Evidence = labtest.NewCase(b, s.Env.Incident)
			// A new step each round: the same step would find its
			// snapshots and take none.
			step := fmt.Sprintf("bench-%d", round)
			var g errgroup.Group
			g.SetLimit(benchLimit)
			for _, id := range ids {
				g.Go(func() error {
					_, err := a.Run(b.Context(), &env, action.Call{Step: step, Params: map[string]any{"instance": id, "wait": true, "timeout": time.Minute}})
					return err
				})
			}
			if err := g.Wait(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(benchInstances*benchVolumes), "snapshots/op")
	})
	b.Run("aws-cli", func(b *testing.B) {
		if _, err := exec.LookPath("aws"); err != nil {
			b.Fatalf("the AWS CLI is the baseline: %v", err)
		}
		env := append(os.Environ(), s.Lab.AWSEnv(b)...)
		for b.Loop() {
			cliRounds++
			for _, id := range ids {
				cmd := exec.CommandContext(b.Context(), "aws", "ec2", "create-snapshots", "--instance-specification", "InstanceId="+id,
					"--endpoint-url", s.Lab.State.AWSEndpoint, "--region", s.Lab.State.Region, "--output", "json")
				cmd.Env = env
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("aws ec2 create-snapshots %s: %v\n%s", id, err, out)
				}
			}
		}
		b.ReportMetric(float64(benchInstances*benchVolumes), "snapshots/op")
	})
	// Both sides took a snapshot of every volume each round, no more.
	vols, err := e.DescribeVolumes(b.Context(), &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{{Name: aws.String("attachment.instance-id"), Values: ids}}})
	if err != nil {
		b.Fatal(err)
	}
	var volIDs []string
	for _, v := range vols.Volumes {
		volIDs = append(volIDs, aws.ToString(v.VolumeId))
	}
	n := 0
	p := ec2.NewDescribeSnapshotsPaginator(e, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: []ec2types.Filter{{Name: aws.String("volume-id"), Values: volIDs}}})
	for p.HasMorePages() {
		page, err := p.NextPage(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		n += len(page.Snapshots)
	}
	if want := (round + cliRounds) * benchInstances * benchVolumes; len(volIDs) != benchInstances*benchVolumes || n != want {
		b.Errorf("%d volumes, %d snapshots of them; want %d and %d", len(volIDs), n, benchInstances*benchVolumes, want)
	}
}

// benchThirdVolume gives every instance a third EBS volume (the seed
// gives two, and the suspect's PersistentVolume a third to one of them)
// and returns the instance IDs.
func benchThirdVolume(b *testing.B, e *ec2.Client) []string {
	b.Helper()
	ctx := b.Context()
	out, err := e.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	if err != nil {
		b.Fatal(err)
	}
	var ids []string
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			id := aws.ToString(in.InstanceId)
			ids = append(ids, id)
			if len(in.BlockDeviceMappings) >= benchVolumes {
				continue
			}
			v, err := e.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: in.Placement.AvailabilityZone, Size: aws.Int32(50), VolumeType: ec2types.VolumeTypeGp3})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := e.AttachVolume(ctx, &ec2.AttachVolumeInput{InstanceId: aws.String(id), VolumeId: v.VolumeId, Device: aws.String("/dev/xvdc")}); err != nil {
				b.Fatal(err)
			}
		}
	}
	if len(ids) != benchInstances {
		b.Fatalf("%d instances, want %d", len(ids), benchInstances)
	}
	return ids
}
