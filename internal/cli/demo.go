package cli

import "github.com/spf13/cobra"

func newDemoCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "demo", Short: "Show fshealth catching real errors on a scratch ext4 image"}
}
