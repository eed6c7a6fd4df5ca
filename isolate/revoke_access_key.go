package isolate

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/internal/awsiam"
)

// RevokeAccessKey is revoke.access-key.
type RevokeAccessKey struct{}

// AccessKeyUndo is the Undo record of revoke.access-key.
type AccessKeyUndo struct {
	User string `json:"user"`
	// Keys maps each key ID the incident touched to its status before.
	Keys               map[string]string `json:"keys"`
	Policy             string            `json:"policy"`
	Sid                string            `json:"sid"`
	LoginProfileDelete bool              `json:"loginProfileDeleted,omitempty"`
}

// accessKeyAPI is what revoke.access-key needs of IAM.
type accessKeyAPI interface {
	awsiam.UserPolicyAPI
	GetAccessKeyLastUsed(ctx context.Context, in *iam.GetAccessKeyLastUsedInput, opts ...func(*iam.Options)) (*iam.GetAccessKeyLastUsedOutput, error)
	ListUsers(ctx context.Context, in *iam.ListUsersInput, opts ...func(*iam.Options)) (*iam.ListUsersOutput, error)
	ListAccessKeys(ctx context.Context, in *iam.ListAccessKeysInput, opts ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error)
	UpdateAccessKey(ctx context.Context, in *iam.UpdateAccessKeyInput, opts ...func(*iam.Options)) (*iam.UpdateAccessKeyOutput, error)
	ListUserTags(ctx context.Context, in *iam.ListUserTagsInput, opts ...func(*iam.Options)) (*iam.ListUserTagsOutput, error)
	TagUser(ctx context.Context, in *iam.TagUserInput, opts ...func(*iam.Options)) (*iam.TagUserOutput, error)
	UntagUser(ctx context.Context, in *iam.UntagUserInput, opts ...func(*iam.Options)) (*iam.UntagUserOutput, error)
	GetLoginProfile(ctx context.Context, in *iam.GetLoginProfileInput, opts ...func(*iam.Options)) (*iam.GetLoginProfileOutput, error)
	DeleteLoginProfile(ctx context.Context, in *iam.DeleteLoginProfileInput, opts ...func(*iam.Options)) (*iam.DeleteLoginProfileOutput, error)
}

// Spec implements action.Action.
func (RevokeAccessKey) Spec() action.Spec {
	return action.Spec{
		Name: "revoke.access-key",
		Doc: "Deactivate an IAM user's access key (or all its keys), each key's status kept in an incident tag on the user first, and deny the user's temporary sessions issued before now; " +
			"optionally delete the user's console password (not restorable). Release re-activates exactly the keys that were active.",
		Kind:              action.Contain,
		Needs:             []action.Cloud{action.AWS},
		RevokesCredential: true,
		Params: []action.Param{
			{Name: "access-key", Type: action.AccessKey, Required: true, Doc: "the access key ID (AKIA...); it must belong to a user of eksir's account"},
			{Name: "all-keys", Type: action.Bool, Default: false, Doc: "deactivate every access key of the user, not only this one"},
			{Name: "delete-login-profile", Type: action.Bool, Default: false, Doc: "delete the user's console password (release cannot restore it: reset it instead)"},
		},
		Outputs: []string{"user", "keys"},
		Permissions: action.Permissions{IAM: []action.IAMPermission{
			// ListUsers has no resource-level permission; it is the fallback
			// when GetAccessKeyLastUsed names no user.
			{Actions: []string{"iam:ListUsers"}},
			{Actions: []string{"iam:GetAccessKeyLastUsed", "iam:ListAccessKeys", "iam:UpdateAccessKey", "iam:ListUserTags",
				"iam:GetUserPolicy", "iam:PutUserPolicy", "iam:DeleteUserPolicy", "iam:GetLoginProfile", "iam:DeleteLoginProfile"}, Resources: []string{"arn:aws:iam::*:user/*"}},
			{Actions: []string{"iam:TagUser", "iam:UntagUser"}, Resources: []string{"arn:aws:iam::*:user/*"},
				Conditions: map[string]map[string][]string{"ForAllValues:StringLike": {"aws:TagKeys": {"eksir.io/*"}}}},
		}},
		Reversible: true,
		Notes:      revokeAccessKeyNotes,
	}
}

// The entry of the keys tag that records a deleted console password.
const (
	loginEntry   = "login-profile"
	loginDeleted = "deleted"
)

// keysTag is the user tag holding the statuses the incident found.
func keysTag(incident string) string { return incidentTag("access-keys", incident) }

// encodeKeys writes key statuses as an IAM tag value: "ID=Status ID=Status"
// (tag values allow letters, digits, spaces and _.:/=+-@, not commas).
func encodeKeys(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, " ")
}

func decodeKeys(s string) map[string]string {
	out := map[string]string{}
	for f := range strings.FieldsSeq(s) {
		if k, v, ok := strings.Cut(f, "="); ok && k != "" {
			out[k] = v
		}
	}
	return out
}

// keyUser finds the user owning key: GetAccessKeyLastUsed names it; when
// it does not, every user's keys are listed.
func keyUser(ctx context.Context, c accessKeyAPI, key string) (string, error) {
	out, err := c.GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(key)})
	if err == nil && aws.ToString(out.UserName) != "" {
		return aws.ToString(out.UserName), nil
	}
	if err != nil && !awsiam.IsNotFound(err) && apiCode(err) != "AccessDenied" {
		return "", fmt.Errorf("get access key last used %s: %w", key, err)
	}
	in := &iam.ListUsersInput{}
	for {
		page, err := c.ListUsers(ctx, in)
		if err != nil {
			return "", fmt.Errorf("list users: %w", err)
		}
		for _, u := range page.Users {
			keys, err := userKeys(ctx, c, aws.ToString(u.UserName))
			if err != nil {
				return "", err
			}
			if _, ok := keys[key]; ok {
				return aws.ToString(u.UserName), nil
			}
		}
		if !page.IsTruncated {
			break
		}
		in.Marker = page.Marker
	}
	return "", fmt.Errorf("%w: access-key: %s belongs to no user of eksir's account; hint: check the key ID, and respond from the key's account (--role-arn)", action.ErrBadInput, key)
}

// userKeys returns the user's access keys and their statuses.
func userKeys(ctx context.Context, c accessKeyAPI, user string) (map[string]string, error) {
	out := map[string]string{}
	in := &iam.ListAccessKeysInput{UserName: aws.String(user)}
	for {
		page, err := c.ListAccessKeys(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list access keys of %s: %w", user, err)
		}
		for _, k := range page.AccessKeyMetadata {
			out[aws.ToString(k.AccessKeyId)] = string(k.Status)
		}
		if !page.IsTruncated {
			return out, nil
		}
		in.Marker = page.Marker
	}
}

// userTag returns the value of the user's tag key, "" when absent.
func userTag(ctx context.Context, c accessKeyAPI, user, key string) (string, bool, error) {
	in := &iam.ListUserTagsInput{UserName: aws.String(user)}
	for {
		page, err := c.ListUserTags(ctx, in)
		if err != nil {
			return "", false, fmt.Errorf("list tags of user %s: %w", user, err)
		}
		for _, t := range page.Tags {
			if aws.ToString(t.Key) == key {
				return aws.ToString(t.Value), true, nil
			}
		}
		if !page.IsTruncated {
			return "", false, nil
		}
		in.Marker = page.Marker
	}
}

type accessKeyResult struct {
	changes  []action.Change
	warnings []string
	undo     AccessKeyUndo
}

func (RevokeAccessKey) apply(ctx context.Context, env *action.Env, call action.Call, dry bool) (accessKeyResult, error) {
	c := iam.NewFromConfig(env.AWS)
	key := call.String("access-key")
	var res accessKeyResult
	if key == "" {
		return res, fmt.Errorf("%w: access-key: required", action.ErrBadInput)
	}
	user, err := keyUser(ctx, c, key)
	if err != nil {
		return res, err
	}
	keys, err := userKeys(ctx, c, user)
	if err != nil {
		return res, err
	}
	if _, ok := keys[key]; !ok {
		return res, fmt.Errorf("%w: access-key: %s is not a key of user %s any more", action.ErrBadInput, key, user)
	}
	targets := []string{key}
	if call.Bool("all-keys") {
		targets = slices.Sorted(maps.Keys(keys))
	}
	tagKey := keysTag(env.Incident)
	raw, tagged, err := userTag(ctx, c, user, tagKey)
	if err != nil {
		return res, err
	}
	// The statuses the incident found first win: after a crash, the keys
	// read Inactive, which is not what release must restore.
	rec := decodeKeys(raw)
	grew := false
	for _, k := range targets {
		if _, ok := rec[k]; !ok {
			rec[k], grew = keys[k], true
		}
	}
	res.undo = AccessKeyUndo{User: user, Keys: rec}
	if grew || !tagged {
		res.changes = append(res.changes, action.Change{Verb: "tag", Object: "user " + user, Detail: tagKey + "=" + encodeKeys(rec)})
		if !dry {
			if _, err := c.TagUser(ctx, &iam.TagUserInput{UserName: aws.String(user), Tags: []iamtypes.Tag{{Key: aws.String(tagKey), Value: aws.String(encodeKeys(rec))}}}); err != nil {
				return res, fmt.Errorf("tag user %s with its key statuses: %w", user, err)
			}
		}
	}
	for _, k := range targets {
		if keys[k] != string(iamtypes.StatusTypeActive) {
			continue
		}
		res.changes = append(res.changes, action.Change{Verb: "deactivate", Object: "access key " + k, Detail: "user " + user})
		if !dry {
			if _, err := c.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String(user), AccessKeyId: aws.String(k), Status: iamtypes.StatusTypeInactive}); err != nil {
				return res, fmt.Errorf("deactivate access key %s of %s: %w", k, user, err)
			}
		}
	}
	name, sid := denyOlderPolicy(env.Incident)
	res.undo.Policy, res.undo.Sid = name, sid
	ch, _, err := ensureDeny(ctx, awsiam.UserPolicies(c, user), name, sid, awsiam.DenyOlderSessions(sid, now(env)), dry)
	if err != nil {
		return res, err
	}
	if ch != nil {
		res.changes = append(res.changes, *ch)
	}
	if call.Bool("delete-login-profile") {
		_, err := c.GetLoginProfile(ctx, &iam.GetLoginProfileInput{UserName: aws.String(user)})
		switch {
		case awsiam.IsNotFound(err):
		case err != nil:
			return res, fmt.Errorf("get login profile of %s: %w", user, err)
		default:
			// Recorded first, like the keys: release then reports the
			// password as not restorable even without its record.
			if rec[loginEntry] == "" {
				rec[loginEntry] = loginDeleted
				if !dry {
					if _, err := c.TagUser(ctx, &iam.TagUserInput{UserName: aws.String(user), Tags: []iamtypes.Tag{{Key: aws.String(tagKey), Value: aws.String(encodeKeys(rec))}}}); err != nil {
						return res, fmt.Errorf("tag user %s: %w", user, err)
					}
				}
			}
			res.changes = append(res.changes, action.Change{Verb: "delete", Object: "login profile of user " + user,
				Detail: "console password deleted; release cannot restore it (reset it with aws iam create-login-profile)"})
			if dry {
				res.warnings = append(res.warnings, "the console password of "+user+" is deleted for good: release cannot restore it; set a new one afterwards")
			} else if _, err := c.DeleteLoginProfile(ctx, &iam.DeleteLoginProfileInput{UserName: aws.String(user)}); err != nil && !awsiam.IsNotFound(err) {
				return res, fmt.Errorf("delete login profile of %s: %w", user, err)
			}
		}
	}
	res.undo.LoginProfileDelete = rec[loginEntry] == loginDeleted
	delete(res.undo.Keys, loginEntry)
	return res, nil
}

// Plan implements action.Action.
func (r RevokeAccessKey) Plan(ctx context.Context, env *action.Env, call action.Call) (action.Plan, error) {
	res, err := r.apply(ctx, env, call, true)
	if err != nil {
		return action.Plan{}, err
	}
	return action.Plan{Changes: res.changes, Done: len(res.changes) == 0, Warnings: res.warnings}, nil
}

// Run implements action.Action.
func (r RevokeAccessKey) Run(ctx context.Context, env *action.Env, call action.Call) (action.Result, error) {
	res, err := r.apply(ctx, env, call, false)
	if err != nil {
		return action.Result{}, err
	}
	b, err := json.Marshal(res.undo)
	if err != nil {
		return action.Result{}, err
	}
	keys := slices.Sorted(maps.Keys(res.undo.Keys))
	return action.Result{Undo: b, Warnings: res.warnings, Outputs: map[string]any{"user": res.undo.User, "keys": keys}}, nil
}

// Undo implements action.Reverser: exactly the keys that were active are
// activated again (a key deleted since is reported gone), the deny policy
// deleted, the tag removed last. A deleted login profile is reported not
// restorable.
func (r RevokeAccessKey) Undo(ctx context.Context, env *action.Env, call action.Call, undo json.RawMessage) ([]action.Restored, error) {
	c := iam.NewFromConfig(env.AWS)
	var u AccessKeyUndo
	if undo != nil {
		if err := json.Unmarshal(undo, &u); err != nil {
			return nil, fmt.Errorf("revoke.access-key undo record: %w", err)
		}
	} else {
		user, err := keyUser(ctx, c, call.String("access-key"))
		if err != nil {
			return nil, err
		}
		u.User = user
		u.Policy, u.Sid = denyOlderPolicy(env.Incident)
	}
	tagKey := keysTag(env.Incident)
	raw, tagged, err := userTag(ctx, c, u.User, tagKey)
	if err != nil {
		return nil, err
	}
	if undo == nil {
		u.Keys = decodeKeys(raw)
		u.LoginProfileDelete = u.Keys[loginEntry] == loginDeleted
		delete(u.Keys, loginEntry)
	}
	now, err := userKeys(ctx, c, u.User)
	if err != nil {
		return nil, err
	}
	var report []action.Restored
	for _, k := range slices.Sorted(maps.Keys(u.Keys)) {
		what := "access key " + k
		cur, exists := now[k]
		switch {
		case !exists:
			report = append(report, action.Restored{Object: what, Outcome: action.OutcomeClean, Detail: "gone"})
		case u.Keys[k] != string(iamtypes.StatusTypeActive):
			report = append(report, action.Restored{Object: what, Outcome: action.OutcomeClean, Detail: "was " + u.Keys[k] + " before the incident: left " + cur})
		case cur == string(iamtypes.StatusTypeActive) || !tagged:
			// Active already, or released before (the tag goes last).
			report = append(report, action.Restored{Object: what, Outcome: action.OutcomeClean, Detail: cur})
		default:
			if _, err := c.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String(u.User), AccessKeyId: aws.String(k), Status: iamtypes.StatusTypeActive}); err != nil {
				return report, fmt.Errorf("activate access key %s of %s again: %w", k, u.User, err)
			}
			report = append(report, action.Restored{Object: what, Outcome: action.OutcomeRestored, Detail: "Active again"})
		}
	}
	res, err := removeDeny(ctx, awsiam.UserPolicies(c, u.User), u.Policy, u.Sid)
	if err != nil {
		return report, err
	}
	report = append(report, res)
	if u.LoginProfileDelete {
		report = append(report, action.Restored{Object: "login profile of user " + u.User, Outcome: OutcomeNotRestorable,
			Detail: "a deleted console password cannot be restored; hint: set a new one (aws iam create-login-profile --user-name " + u.User + " --password-reset-required)"})
	}
	if tagged {
		if _, err := c.UntagUser(ctx, &iam.UntagUserInput{UserName: aws.String(u.User), TagKeys: []string{tagKey}}); err != nil {
			return report, fmt.Errorf("remove the incident tag from user %s: %w", u.User, err)
		}
	}
	return report, nil
}
