package collect

import _ "embed"

// The Notes of the Specs (Markdown): what each action writes into the case,
// and what it creates to do so; docs/actions.md prints them.
var (
	//go:embed notes/k8s-objects.md
	objectsNotes string
	//go:embed notes/pod-logs.md
	podLogsNotes string
	//go:embed notes/volatile.md
	volatileNotes string
	//go:embed notes/checkpoint.md
	checkpointNotes string
	//go:embed notes/node-files.md
	nodeFilesNotes string
	//go:embed notes/instance-metadata.md
	instanceMetadataNotes string
	//go:embed notes/cloud-logs.md
	cloudLogsNotes string
	//go:embed notes/memory.md
	memoryNotes string
)

//go:embed notes/ebs-snapshot.md
var ebsSnapshotNotes string
