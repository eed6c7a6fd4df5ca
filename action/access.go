package action

import (
	"context"
	"fmt"

	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// AccessReviewRule is the permission an action's Plan needs to ask
// CheckAccess; every action that plans with it declares it.
var AccessReviewRule = KubeRule{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"selfsubjectaccessreviews"}, Verbs: []string{"create"}}

// CheckAccess asks the API server whether the caller may do each thing
// (SelfSubjectAccessReview), for a plan's permission checks. It changes
// nothing.
func CheckAccess(ctx context.Context, kc kubernetes.Interface, attrs ...authzv1.ResourceAttributes) ([]PermissionCheck, error) {
	var out []PermissionCheck
	for _, a := range attrs {
		r, err := kc.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authzv1.SelfSubjectAccessReview{
			Spec: authzv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &a}}, metav1.CreateOptions{})
		if err != nil {
			return out, fmt.Errorf("self subject access review: %w", err)
		}
		p := a.Verb + " " + a.Resource
		if a.Subresource != "" {
			p += "/" + a.Subresource
		}
		if a.Namespace != "" {
			p += " in " + a.Namespace
		}
		out = append(out, PermissionCheck{Permission: p, Allowed: r.Status.Allowed, Reason: r.Status.Reason})
	}
	return out, nil
}
