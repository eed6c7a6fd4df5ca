package main

import "github.com/urfave/cli/v2"

func keygenCommand() *cli.Command  { return &cli.Command{Name: "keygen", Hidden: true} }
func acquireCommand() *cli.Command { return &cli.Command{Name: "acquire", Hidden: true} }
func sealCommand() *cli.Command    { return &cli.Command{Name: "seal", Hidden: true} }
func verifyCommand() *cli.Command  { return &cli.Command{Name: "verify", Hidden: true} }
func custodyCommand() *cli.Command { return &cli.Command{Name: "custody", Hidden: true} }
