package lab

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	eaws "github.com/eksir/eksir/internal/aws"
)

// awsWorld is what seeding created in the emulated account.
type awsWorld struct {
	Account, Region, Cluster string
	VPC, SecurityGroup, ASG  string
	// The suspect's second interface (a trunk for security groups for pods),
	// a branch interface of it, and their group.
	PodsSecurityGroup, TrunkENI, BranchENI string
	NodeRole, InstanceProfile              string
	OIDCProviderArn, OIDCIssuer            string
	IRSARoleArn, IRSARoleName              string
	LeakedUser, AccessKeyID                string
	EvidenceBucket                         string
	Instances                              []instance // sorted by private IP
	DataVolume, DataVolumeAZ               string     // the EBS volume behind the suspect's PV
}

type instance struct {
	ID, AZ, PrivateIP, Type, RootVolume, DataVolume string
}

var zones = []string{"a", "b", "c"}

const (
	nodeInstanceType = "m5.xlarge"
	// The AMI ID does not need to exist in moto; this one reads as EKS's.
	nodeAMI = "ami-0eks1340al2023x86"
)

// seedAWS creates the cluster's AWS side. Instances are launched with one
// RunInstances call per zone (MinCount = MaxCount) so 100 nodes take three
// calls, not a hundred.
func seedAWS(ctx context.Context, cfg aws.Config, sc Scenario, cluster string, nodes int) (*awsWorld, error) {
	ec2c := ec2.NewFromConfig(cfg)
	iamc := iam.NewFromConfig(cfg)
	w := &awsWorld{Region: cfg.Region, Cluster: cluster}

	// IAM first: instances are launched with the node instance profile.
	if err := seedIAM(ctx, iamc, sc, w); err != nil {
		return nil, err
	}

	vpc, err := ec2c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16"),
		TagSpecifications: tags(ec2types.ResourceTypeVpc, cluster, map[string]string{"Name": "eksctl-" + cluster + "-cluster/VPC"})})
	if err != nil {
		return nil, fmt.Errorf("create VPC: %w", err)
	}
	w.VPC = aws.ToString(vpc.Vpc.VpcId)
	sg, err := ec2c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName: aws.String("eks-cluster-sg-" + cluster), Description: aws.String("EKS created security group applied to ENI that is attached to EKS Control Plane master nodes, as well as any managed workloads."),
		VpcId: aws.String(w.VPC), TagSpecifications: tags(ec2types.ResourceTypeSecurityGroup, cluster, nil)})
	if err != nil {
		return nil, fmt.Errorf("create node security group: %w", err)
	}
	w.SecurityGroup = aws.ToString(sg.GroupId)
	if _, err := ec2c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: sg.GroupId,
		IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("-1"),
			UserIdGroupPairs: []ec2types.UserIdGroupPair{{GroupId: sg.GroupId}}}},
	}); err != nil {
		return nil, fmt.Errorf("authorize node-to-node traffic: %w", err)
	}

	perZone := make([]int, len(zones))
	for i := range nodes {
		perZone[i%len(zones)]++
	}
	var (
		g       errgroup.Group
		results = make([][]instance, len(zones))
		subnets = map[string]string{}
	)
	for zi, z := range zones {
		az := cfg.Region + z
		sn, err := ec2c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(w.VPC), AvailabilityZone: aws.String(az),
			CidrBlock:         aws.String(fmt.Sprintf("10.0.%d.0/20", zi*16)),
			TagSpecifications: tags(ec2types.ResourceTypeSubnet, cluster, map[string]string{"kubernetes.io/role/internal-elb": "1"})})
		if err != nil {
			return nil, fmt.Errorf("create subnet in %s: %w", az, err)
		}
		if perZone[zi] == 0 {
			continue
		}
		subnet := aws.ToString(sn.Subnet.SubnetId)
		subnets[az] = subnet
		g.Go(func() error {
			out, err := ec2c.RunInstances(ctx, &ec2.RunInstancesInput{
				ImageId: aws.String(nodeAMI), InstanceType: ec2types.InstanceType(nodeInstanceType),
				MinCount: aws.Int32(int32(perZone[zi])), MaxCount: aws.Int32(int32(perZone[zi])),
				// The group goes on the interface, not SecurityGroupIds: moto
				// merges the latter into every interface's groups.
				NetworkInterfaces:  []ec2types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0), SubnetId: aws.String(subnet), Groups: []string{w.SecurityGroup}}},
				IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Name: aws.String(w.InstanceProfile)},
				BlockDeviceMappings: []ec2types.BlockDeviceMapping{
					{DeviceName: aws.String("/dev/xvda"), Ebs: &ec2types.EbsBlockDevice{VolumeSize: aws.Int32(20), VolumeType: ec2types.VolumeTypeGp3, DeleteOnTermination: aws.Bool(true)}},
					{DeviceName: aws.String("/dev/xvdb"), Ebs: &ec2types.EbsBlockDevice{VolumeSize: aws.Int32(100), VolumeType: ec2types.VolumeTypeGp3}},
				},
				MetadataOptions: &ec2types.InstanceMetadataOptionsRequest{HttpTokens: ec2types.HttpTokensStateRequired, HttpPutResponseHopLimit: aws.Int32(2)},
				TagSpecifications: tags(ec2types.ResourceTypeInstance, cluster, map[string]string{
					"Name": cluster + "-ng-default-Node", "eks:nodegroup-name": "ng-default",
					"k8s.io/cluster-autoscaler/" + cluster: "owned"}),
			})
			if err != nil {
				return fmt.Errorf("launch %d node instances in %s: %w", perZone[zi], az, err)
			}
			for _, in := range out.Instances {
				x := instance{ID: aws.ToString(in.InstanceId), AZ: az, PrivateIP: aws.ToString(in.PrivateIpAddress), Type: nodeInstanceType}
				for _, b := range in.BlockDeviceMappings {
					if b.Ebs == nil {
						continue
					}
					switch aws.ToString(b.DeviceName) {
					case "/dev/xvda":
						x.RootVolume = aws.ToString(b.Ebs.VolumeId)
					case "/dev/xvdb":
						x.DataVolume = aws.ToString(b.Ebs.VolumeId)
					}
				}
				results[zi] = append(results[zi], x)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, r := range results {
		w.Instances = append(w.Instances, r...)
	}
	sort.Slice(w.Instances, func(i, j int) bool { return ipLess(w.Instances[i].PrivateIP, w.Instances[j].PrivateIP) })
	if len(w.Instances) != nodes {
		return nil, fmt.Errorf("launched %d instances, want %d", len(w.Instances), nodes)
	}
	if err := associateProfiles(ctx, ec2c, w); err != nil {
		return nil, err
	}

	// The suspect pod's PersistentVolume: a volume of its own in the suspect
	// node's zone, attached to that node as the EBS CSI driver would.
	suspect := w.Instances[0]
	vol, err := ec2c.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(suspect.AZ), Size: aws.Int32(10), VolumeType: ec2types.VolumeTypeGp3,
		TagSpecifications: tags(ec2types.ResourceTypeVolume, cluster, map[string]string{
			"kubernetes.io/created-for/pvc/namespace": sc.Namespace, "kubernetes.io/created-for/pvc/name": sc.App + "-data",
			"ebs.csi.aws.com/cluster": "true"})})
	if err != nil {
		return nil, fmt.Errorf("create the suspect's data volume: %w", err)
	}
	w.DataVolume, w.DataVolumeAZ = aws.ToString(vol.VolumeId), suspect.AZ
	if _, err := ec2c.AttachVolume(ctx, &ec2.AttachVolumeInput{VolumeId: vol.VolumeId, InstanceId: aws.String(suspect.ID), Device: aws.String("/dev/xvdba")}); err != nil {
		return nil, fmt.Errorf("attach the suspect's data volume: %w", err)
	}

	if err := seedPodsENIs(ctx, ec2c, w, subnets[suspect.AZ], cluster); err != nil {
		return nil, err
	}
	if err := seedASG(ctx, autoscaling.NewFromConfig(cfg), w); err != nil {
		return nil, err
	}
	if err := seedBucket(ctx, eaws.S3(cfg), w); err != nil {
		return nil, err
	}
	return w, nil
}

// seedPodsENIs gives the suspect a second interface (device 1) with a
// "pods" security group, and a branch interface hanging from it as the VPC
// resource controller makes them for security groups for pods: moto has no
// trunk or branch interface types, so the pair is the controller's tag on
// an unattached interface, which is how branches are found.
func seedPodsENIs(ctx context.Context, ec2c *ec2.Client, w *awsWorld, subnet, cluster string) error {
	sg, err := ec2c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("eks-pods-sg-" + cluster),
		Description: aws.String("security group for pods"), VpcId: aws.String(w.VPC), TagSpecifications: tags(ec2types.ResourceTypeSecurityGroup, cluster, nil)})
	if err != nil {
		return fmt.Errorf("create pods security group: %w", err)
	}
	w.PodsSecurityGroup = aws.ToString(sg.GroupId)
	trunk, err := ec2c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(subnet), Groups: []string{w.PodsSecurityGroup},
		Description: aws.String("trunk interface for security groups for pods")})
	if err != nil {
		return fmt.Errorf("create the suspect's second interface: %w", err)
	}
	w.TrunkENI = aws.ToString(trunk.NetworkInterface.NetworkInterfaceId)
	if _, err := ec2c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: aws.String(w.TrunkENI), InstanceId: aws.String(w.Instances[0].ID), DeviceIndex: aws.Int32(1)}); err != nil {
		return fmt.Errorf("attach the suspect's second interface: %w", err)
	}
	branch, err := ec2c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(subnet), Groups: []string{w.PodsSecurityGroup},
		Description: aws.String("aws-k8s-branch-eni"),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeNetworkInterface, Tags: []ec2types.Tag{
			{Key: aws.String("vpcresources.k8s.aws/trunk-eni-id"), Value: aws.String(w.TrunkENI)},
			{Key: aws.String("eks:eni:owner"), Value: aws.String("eks-vpc-resource-controller")},
			{Key: aws.String("kubernetes.io/cluster/" + cluster), Value: aws.String("owned")}}}}})
	if err != nil {
		return fmt.Errorf("create the suspect's branch interface: %w", err)
	}
	w.BranchENI = aws.ToString(branch.NetworkInterface.NetworkInterfaceId)
	return nil
}

// associateProfiles gives every node instance its instance profile, as
// AWS does for each instance a RunInstances call launches; moto associates
// the profile with the first instance of the call only.
func associateProfiles(ctx context.Context, ec2c *ec2.Client, w *awsWorld) error {
	have := map[string]bool{}
	p := ec2.NewDescribeIamInstanceProfileAssociationsPaginator(ec2c, &ec2.DescribeIamInstanceProfileAssociationsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("describe instance profile associations: %w", err)
		}
		for _, a := range page.IamInstanceProfileAssociations {
			have[aws.ToString(a.InstanceId)] = true
		}
	}
	for _, in := range w.Instances {
		if have[in.ID] {
			continue
		}
		if _, err := ec2c.AssociateIamInstanceProfile(ctx, &ec2.AssociateIamInstanceProfileInput{InstanceId: aws.String(in.ID),
			IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Name: aws.String(w.InstanceProfile)}}); err != nil {
			return fmt.Errorf("associate the node instance profile with %s: %w", in.ID, err)
		}
	}
	return nil
}

func seedIAM(ctx context.Context, iamc *iam.Client, sc Scenario, w *awsWorld) error {
	w.NodeRole = "eksctl-" + w.Cluster + "-nodegroup-NodeInstanceRole"
	if _, err := iamc.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(w.NodeRole),
		AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)}); err != nil {
		return fmt.Errorf("create node role: %w", err)
	}
	for _, p := range []string{"AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly"} {
		if _, err := iamc.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(w.NodeRole), PolicyArn: aws.String("arn:aws:iam::aws:policy/" + p)}); err != nil {
			return fmt.Errorf("attach %s to the node role: %w", p, err)
		}
	}
	w.InstanceProfile = w.NodeRole
	if _, err := iamc.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String(w.InstanceProfile)}); err != nil {
		return fmt.Errorf("create instance profile: %w", err)
	}
	if _, err := iamc.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String(w.InstanceProfile), RoleName: aws.String(w.NodeRole)}); err != nil {
		return fmt.Errorf("add node role to instance profile: %w", err)
	}

	// IRSA: the cluster's OIDC provider and a role trusting exactly the
	// suspect's service account through it.
	w.OIDCIssuer = "https://oidc.eks." + w.Region + ".amazonaws.com/id/" + oidcID(w.Cluster)
	op, err := iamc.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{Url: aws.String(w.OIDCIssuer),
		ClientIDList: []string{"sts.amazonaws.com"}, ThumbprintList: []string{"9e99a48a9960b14926bb7f3b02e22da2b0ab7280"}})
	if err != nil {
		return fmt.Errorf("create OIDC provider: %w", err)
	}
	w.OIDCProviderArn = aws.ToString(op.OpenIDConnectProviderArn)
	u, _ := url.Parse(w.OIDCIssuer)
	issuer := u.Host + u.Path
	w.IRSARoleName = w.Cluster + "-" + sc.Namespace + "-" + sc.ServiceAccount
	trust := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":%q},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{%q:%q,%q:"sts.amazonaws.com"}}}]}`,
		w.OIDCProviderArn, issuer+":sub", "system:serviceaccount:"+sc.Namespace+":"+sc.ServiceAccount, issuer+":aud")
	role, err := iamc.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(w.IRSARoleName), AssumeRolePolicyDocument: aws.String(trust)})
	if err != nil {
		return fmt.Errorf("create IRSA role: %w", err)
	}
	w.IRSARoleArn = aws.ToString(role.Role.Arn)
	if _, err := iamc.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(w.IRSARoleName), PolicyName: aws.String(sc.App + "-access"), PolicyDocument: aws.String(sc.RolePolicy)}); err != nil {
		return fmt.Errorf("put IRSA role policy: %w", err)
	}
	if _, err := iamc.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(sc.LeakedUser)}); err != nil {
		return fmt.Errorf("create IAM user %s: %w", sc.LeakedUser, err)
	}
	if _, err := iamc.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String(sc.LeakedUser), PolicyArn: aws.String("arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPowerUser")}); err != nil {
		return fmt.Errorf("attach policy to %s: %w", sc.LeakedUser, err)
	}
	key, err := iamc.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(sc.LeakedUser)})
	if err != nil {
		return fmt.Errorf("create access key for %s: %w", sc.LeakedUser, err)
	}
	w.LeakedUser, w.AccessKeyID = sc.LeakedUser, aws.ToString(key.AccessKey.AccessKeyId)
	w.Account = accountFromArn(w.IRSARoleArn)
	return nil
}

func seedASG(ctx context.Context, asc *autoscaling.Client, w *awsWorld) error {
	w.ASG = "eks-ng-default-" + shortHash(w.Cluster, 8)
	lt := "eks-" + shortHash(w.Cluster+"/lt", 8)
	// An ASG needs a launch configuration or template; DesiredCapacity 0 so
	// that moto launches nothing of its own, then the seeded instances are
	// attached (which raises the desired capacity to match).
	if _, err := asc.CreateLaunchConfiguration(ctx, &autoscaling.CreateLaunchConfigurationInput{LaunchConfigurationName: aws.String(lt),
		ImageId: aws.String(nodeAMI), InstanceType: aws.String(nodeInstanceType), IamInstanceProfile: aws.String(w.InstanceProfile)}); err != nil {
		return fmt.Errorf("create launch configuration: %w", err)
	}
	zonesSeen := map[string]bool{}
	for _, in := range w.Instances {
		zonesSeen[in.AZ] = true
	}
	var azs []string
	for z := range zonesSeen {
		azs = append(azs, z)
	}
	sort.Strings(azs)
	if _, err := asc.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String(w.ASG),
		LaunchConfigurationName: aws.String(lt), MinSize: aws.Int32(0), MaxSize: aws.Int32(int32(len(w.Instances) * 2)), DesiredCapacity: aws.Int32(0),
		AvailabilityZones: azs}); err != nil {
		return fmt.Errorf("create Auto Scaling group: %w", err)
	}
	// AttachInstances takes at most 20 instances per call.
	for i := 0; i < len(w.Instances); i += 20 {
		var ids []string
		for _, in := range w.Instances[i:min(i+20, len(w.Instances))] {
			ids = append(ids, in.ID)
		}
		if _, err := asc.AttachInstances(ctx, &autoscaling.AttachInstancesInput{AutoScalingGroupName: aws.String(w.ASG), InstanceIds: ids}); err != nil {
			return fmt.Errorf("attach instances to %s: %w", w.ASG, err)
		}
	}
	return nil
}

func seedBucket(ctx context.Context, s3c *s3.Client, w *awsWorld) error {
	w.EvidenceBucket = "eksir-evidence-" + w.Account + "-" + w.Region
	_, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(w.EvidenceBucket), ObjectLockEnabledForBucket: aws.Bool(true)})
	var owned *s3types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("create evidence bucket: %w", err)
	}
	if _, err := s3c.PutObjectLockConfiguration(ctx, &s3.PutObjectLockConfigurationInput{Bucket: aws.String(w.EvidenceBucket),
		ObjectLockConfiguration: &s3types.ObjectLockConfiguration{ObjectLockEnabled: s3types.ObjectLockEnabledEnabled,
			Rule: &s3types.ObjectLockRule{DefaultRetention: &s3types.DefaultRetention{Mode: s3types.ObjectLockRetentionModeGovernance, Days: aws.Int32(30)}}}}); err != nil {
		return fmt.Errorf("set object lock on evidence bucket: %w", err)
	}
	return nil
}

func tags(rt ec2types.ResourceType, cluster string, extra map[string]string) []ec2types.TagSpecification {
	t := []ec2types.Tag{{Key: aws.String("kubernetes.io/cluster/" + cluster), Value: aws.String("owned")},
		{Key: aws.String("eks:cluster-name"), Value: aws.String(cluster)}}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t = append(t, ec2types.Tag{Key: aws.String(k), Value: aws.String(extra[k])})
	}
	return []ec2types.TagSpecification{{ResourceType: rt, Tags: t}}
}

// accountFromArn returns the account field of an ARN.
func accountFromArn(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 5 {
		return ""
	}
	return parts[4]
}

// ipLess orders dotted IPv4 addresses numerically.
func ipLess(a, b string) bool {
	pa, pb := ipParts(a), ipParts(b)
	for i := range pa {
		if pa[i] != pb[i] {
			return pa[i] < pb[i]
		}
	}
	return false
}

func ipParts(s string) [4]int {
	var p [4]int
	for i, f := range strings.SplitN(s, ".", 4) {
		p[i], _ = strconv.Atoi(f)
	}
	return p
}
