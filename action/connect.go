package action

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Connector builds clients on demand. Connect asks it only for the clouds
// the actions at hand declare, so configuration for another cloud (an AWS
// region, a kubeconfig) is never required by a playbook that does not use
// it.
type Connector interface {
	Kubernetes(ctx context.Context) (kubernetes.Interface, *rest.Config, error)
	AWS(ctx context.Context) (aws.Config, error)
}

// Connect fills env's clients for the given clouds. Clients already set
// are kept, so it is safe to call again with more clouds.
func Connect(ctx context.Context, env *Env, clouds []Cloud, c Connector) error {
	if slices.Contains(clouds, Kubernetes) && env.Kube == nil {
		if c == nil {
			return fmt.Errorf("connect to Kubernetes: no connector")
		}
		k, cfg, err := c.Kubernetes(ctx)
		if err != nil {
			return err
		}
		env.Kube, env.RESTConfig = k, cfg
	}
	if slices.Contains(clouds, AWS) && env.AWS.Credentials == nil && env.AWS.Region == "" {
		if c == nil {
			return fmt.Errorf("connect to AWS: no connector")
		}
		cfg, err := c.AWS(ctx)
		if err != nil {
			return err
		}
		env.AWS = cfg
	}
	return nil
}
