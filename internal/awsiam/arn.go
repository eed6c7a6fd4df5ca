package awsiam

import (
	"fmt"
	"strings"
)

// ARN is the parts of an IAM ARN eksir uses:
// arn:PARTITION:iam::ACCOUNT:TYPE/PATH/NAME.
type ARN struct {
	Partition, Account string
	// Type is role, user, instance-profile, ...
	Type string
	// Name is the last path element: the name IAM calls take (RoleName).
	Name string
}

// ParseARN reads an IAM ARN (role, user, instance profile).
func ParseARN(arn string) (ARN, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] == "" || parts[2] != "iam" || parts[3] != "" {
		return ARN{}, fmt.Errorf("ARN %q: want arn:aws:iam::<account>:<type>/<name>", arn)
	}
	if len(parts[4]) != 12 || strings.Trim(parts[4], "0123456789") != "" {
		return ARN{}, fmt.Errorf("ARN %q: account %q is not 12 digits", arn, parts[4])
	}
	typ, rest, ok := strings.Cut(parts[5], "/")
	name := rest[strings.LastIndex(rest, "/")+1:]
	if !ok || typ == "" || name == "" {
		return ARN{}, fmt.Errorf("ARN %q: want arn:aws:iam::<account>:<type>/<name>", arn)
	}
	return ARN{Partition: parts[1], Account: parts[4], Type: typ, Name: name}, nil
}

// ParseRoleARN reads a role ARN; any other ARN is an error.
func ParseRoleARN(arn string) (ARN, error) {
	a, err := ParseARN(arn)
	if err != nil {
		return ARN{}, err
	}
	if a.Type != "role" {
		return ARN{}, fmt.Errorf("ARN %q names a %s, not a role", arn, a.Type)
	}
	return a, nil
}
