//go:build !lean

package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/eksir/eksir/playbooks"
)

// buildKind names this build in `eksir version`: the complete CLI, which
// `make build` also installs as bin/eksir-engine.
const buildKind = "full"

// engineActions are the actions of the commands declared in engine_cmds.go,
// by command path. A test checks that every declared command got one.
var engineActions = map[string]cli.ActionFunc{
	"playbooks list":     playbooksList,
	"playbooks show":     playbooksShow,
	"playbooks validate": playbooksValidate,
	"plan":               planAction,
	"run":                runAction,
	"resume":             resumeAction,
	"release":            releaseAction,
	"status":             statusAction,
	"permissions":        permissionsAction,
	"lab up":             labUp,
	"lab down":           labDown,
	"lab status":         labStatus,
	"lab seed":           labSeed,
}

// engine returns the real action of the command at path.
func engine(path string) cli.ActionFunc { return engineActions[path] }

// engineBadInput are the sentinels of packages only this build links that
// mean bad input (exit 2); exit.go maps them.
var engineBadInput = []error{playbooks.ErrInvalid}

// The front's recursion marker must not reach anything this process starts
// (lab components, or an eksir run from a game-day script).
func init() { os.Unsetenv(frontEnv) }
