package main

import "github.com/urfave/cli/v2"

// labCommand is filled in by the lab work (issue 3).
func labCommand() *cli.Command {
	return &cli.Command{Name: "lab", Usage: "local lab (not built yet)", Hidden: true}
}
