// Package awsiam holds the IAM policy documents eksir writes to revoke
// credentials (deny sessions issued before a time, deny one EKS Pod
// Identity pod's sessions), reads them back as IAM returns them
// (URL-encoded), and puts them as inline policies without ever overwriting
// a policy that is not the incident's own.
package awsiam

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Version is the IAM policy language version every document carries.
const Version = "2012-10-17"

// PodUIDTag is the session tag EKS Pod Identity puts on every session it
// creates for a pod (with eks-cluster-arn, eks-cluster-name,
// kubernetes-namespace, kubernetes-service-account, kubernetes-pod-name):
// the one key that tells one pod's sessions from its siblings'.
const PodUIDTag = "kubernetes-pod-uid"

// maxDocument bounds what the decoder accepts: IAM's largest inline
// policy is 10,240 characters (a role's), a managed policy 6,144; URL
// encoding at most triples them. Anything larger did not come from IAM.
const maxDocument = 64 << 10

// Values is an IAM element that may be written as one string or a list of
// strings (Action, Resource, condition values). One value marshals as a
// string, as the console writes it.
type Values []string

// UnmarshalJSON accepts a string or a list of strings.
func (v *Values) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*v = Values{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return fmt.Errorf("want a string or a list of strings: %w", err)
	}
	*v = l
	return nil
}

// MarshalJSON writes one value as a string.
func (v Values) MarshalJSON() ([]byte, error) {
	if len(v) == 1 {
		return json.Marshal(v[0])
	}
	return json.Marshal([]string(v))
}

// Statement is one IAM policy statement with the elements eksir's
// documents use; Decode refuses any other (Principal, NotResource, ...),
// so two documents never compare equal by omission.
type Statement struct {
	Sid       string                       `json:"Sid,omitempty"`
	Effect    string                       `json:"Effect"`
	Action    Values                       `json:"Action,omitempty"`
	NotAction Values                       `json:"NotAction,omitempty"`
	Resource  Values                       `json:"Resource,omitempty"`
	Condition map[string]map[string]Values `json:"Condition,omitempty"`
}

// Statements is a document's Statement element: one statement object or a
// list of them.
type Statements []Statement

// UnmarshalJSON accepts an object or a list of objects.
func (s *Statements) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var one Statement
		if err := strictUnmarshal(b, &one); err != nil {
			return err
		}
		*s = Statements{one}
		return nil
	}
	var l []json.RawMessage
	if err := json.Unmarshal(b, &l); err != nil {
		return fmt.Errorf("element Statement: want an object or a list of objects: %w", err)
	}
	out := make(Statements, 0, len(l))
	for i, raw := range l {
		var st Statement
		if err := strictUnmarshal(raw, &st); err != nil {
			return fmt.Errorf("statement %d: %w", i, err)
		}
		out = append(out, st)
	}
	*s = out
	return nil
}

// Document is an IAM policy document.
type Document struct {
	Version   string     `json:"Version"`
	Statement Statements `json:"Statement"`
}

// ErrDocument is wrapped by every error about a document that cannot be
// read: it came from IAM (or from whoever wrote the policy) and is
// untrusted input.
var ErrDocument = errors.New("IAM policy document")

// Decode reads a policy document as IAM returns it: URL-encoded
// (GetRolePolicy, GetUserPolicy and moto alike), or plain JSON, which
// starts with "{" where an encoded one starts with "%7B". Elements eksir
// does not model (Principal, NotResource, ...) are an error rather than
// silently dropped, so two documents never compare equal by omission.
func Decode(s string) (Document, error) {
	if len(s) > maxDocument {
		return Document{}, fmt.Errorf("%w: %d bytes, more than IAM allows", ErrDocument, len(s))
	}
	raw := strings.TrimSpace(s)
	if !strings.HasPrefix(raw, "{") {
		u, err := url.QueryUnescape(raw)
		if err != nil {
			return Document{}, fmt.Errorf("%w: URL decoding: %w", ErrDocument, err)
		}
		raw = strings.TrimSpace(u)
	}
	var d Document
	if err := strictUnmarshal([]byte(raw), &d); err != nil {
		return Document{}, fmt.Errorf("%w: %w", ErrDocument, err)
	}
	if d.Version == "" || len(d.Statement) == 0 {
		return Document{}, fmt.Errorf("%w: Version and Statement are required", ErrDocument)
	}
	for i, st := range d.Statement {
		if st.Effect != "Allow" && st.Effect != "Deny" {
			return Document{}, fmt.Errorf("%w: Statement[%d]: Effect %q: want Allow or Deny", ErrDocument, i, st.Effect)
		}
	}
	return d, nil
}

// strictUnmarshal decodes one JSON value into v, refusing unknown fields
// and trailing data.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the document")
	}
	return nil
}

// String is the document as compact JSON, what PutRolePolicy sends.
func (d Document) String() string {
	b, err := json.Marshal(d)
	if err != nil {
		// Every field is a string, list or map of strings: Marshal cannot fail.
		panic(err)
	}
	return string(b)
}

// Equal compares documents as IAM evaluates them: the order of actions,
// resources and condition values does not matter, statement order and
// everything else does.
func Equal(a, b Document) bool {
	if a.Version != b.Version || len(a.Statement) != len(b.Statement) {
		return false
	}
	for i := range a.Statement {
		if !sameStatement(a.Statement[i], b.Statement[i]) {
			return false
		}
	}
	return true
}

func sameStatement(a, b Statement) bool {
	if a.Sid != b.Sid || a.Effect != b.Effect || !sameSet(a.Action, b.Action) || !sameSet(a.NotAction, b.NotAction) ||
		!sameSet(a.Resource, b.Resource) || len(a.Condition) != len(b.Condition) {
		return false
	}
	for op, ka := range a.Condition {
		kb, ok := b.Condition[op]
		if !ok || len(ka) != len(kb) {
			return false
		}
		for k, va := range ka {
			vb, ok := kb[k]
			if !ok || !sameSet(va, vb) {
				return false
			}
		}
	}
	return true
}

func sameSet(a, b Values) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

// HasSid reports whether a statement of d carries sid.
func (d Document) HasSid(sid string) bool {
	return slices.ContainsFunc(d.Statement, func(s Statement) bool { return s.Sid == sid })
}

// TokenIssueTimeFormat is how aws:TokenIssueTime is compared: ISO 8601 in UTC.
const TokenIssueTimeFormat = time.RFC3339

// DenyOlderSessions denies every action to every session of the principal
// issued before t: the console's "Revoke active sessions". Long-term
// access keys carry no aws:TokenIssueTime, so they are not affected; new
// sessions (issued after t) work again.
func DenyOlderSessions(sid string, t time.Time) Document {
	return Document{Version: Version, Statement: Statements{{
		Sid: sid, Effect: "Deny", Action: Values{"*"}, Resource: Values{"*"},
		Condition: map[string]map[string]Values{"DateLessThan": {"aws:TokenIssueTime": {t.UTC().Format(TokenIssueTimeFormat)}}},
	}}}
}

// DenyPodSessions denies every action to the sessions EKS Pod Identity
// issued for the pod with this UID (its kubernetes-pod-uid session tag);
// the other pods using the role keep working.
func DenyPodSessions(sid, podUID string) Document {
	return Document{Version: Version, Statement: Statements{{
		Sid: sid, Effect: "Deny", Action: Values{"*"}, Resource: Values{"*"},
		Condition: map[string]map[string]Values{"StringEquals": {"aws:PrincipalTag/" + PodUIDTag: {podUID}}},
	}}}
}

// IssuedBefore returns the time of a deny-older-sessions document: the
// original revocation time when the policy was found again on resume.
func (d Document) IssuedBefore() (time.Time, bool) {
	for _, st := range d.Statement {
		if v := st.Condition["DateLessThan"]["aws:TokenIssueTime"]; len(v) == 1 {
			t, err := time.Parse(TokenIssueTimeFormat, v[0])
			return t, err == nil
		}
	}
	return time.Time{}, false
}
