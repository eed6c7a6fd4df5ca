package isolate

import _ "embed"

// The Notes of the Specs (Markdown): what each action changes, in order,
// and what its Undo restores; docs/actions.md prints them.
var (
	//go:embed notes/pod-network.md
	podNetworkNotes string
	//go:embed notes/cordon-node.md
	cordonNodeNotes string
	//go:embed notes/label.md
	labelNotes string
	//go:embed notes/revoke-service-account.md
	revokeNotes string
)

var (
	//go:embed notes/revoke-instance-profile.md
	revokeInstanceProfileNotes string
	//go:embed notes/revoke-irsa-role.md
	revokeIRSANotes string
	//go:embed notes/revoke-pod-identity.md
	revokePodIdentityNotes string
	//go:embed notes/revoke-access-key.md
	revokeAccessKeyNotes string
)
