package lab

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"os"
	"path"
	"path/filepath"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/eksir/eksir/internal/kube"
)

// Copies of kwok v0.8.0's CRDs and stages; see assets/kwok/ORIGIN.md.
//
//go:embed assets/kwok/crds/*.yaml assets/kwok/stages/*.yaml
var kwokAssets embed.FS

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// applyKwokCRDs creates the Logs, ClusterLogs, Exec and ClusterExec CRDs and
// waits until the API server serves them: kwok refuses to start otherwise.
func applyKwokCRDs(ctx context.Context, kubeconfig string) error {
	c, err := kube.New(kube.Options{Kubeconfig: kubeconfig})
	if err != nil {
		return err
	}
	files, err := kwokAssets.ReadDir("assets/kwok/crds")
	if err != nil {
		return err
	}
	var names []string
	for _, f := range files {
		b, err := kwokAssets.ReadFile(path.Join("assets/kwok/crds", f.Name()))
		if err != nil {
			return err
		}
		var obj map[string]any
		if err := yaml.Unmarshal(b, &obj); err != nil {
			return fmt.Errorf("parse %s: %w", f.Name(), err)
		}
		u := &unstructured.Unstructured{Object: obj}
		_, err = c.Dynamic.Resource(crdGVR).Create(ctx, u, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create CRD %s: %w", u.GetName(), err)
		}
		names = append(names, u.GetName())
	}
	for _, name := range names {
		err := poll(ctx, func(ctx context.Context) (bool, error) {
			u, err := c.Dynamic.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, ci := range conds {
				m, _ := ci.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					return true, nil
				}
			}
			return false, fmt.Errorf("CRD %s not established yet", name)
		})
		if err != nil {
			return fmt.Errorf("wait for CRD %s: %w", name, err)
		}
	}
	return nil
}

// writeKwokAssets writes the stages config kwok reads and the exec shims, and
// returns the config path.
func writeKwokAssets(dir string) (string, error) {
	files, err := kwokAssets.ReadDir("assets/kwok/stages")
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	for _, f := range files {
		b, err := kwokAssets.ReadFile(path.Join("assets/kwok/stages", f.Name()))
		if err != nil {
			return "", err
		}
		buf.WriteString("---\n")
		buf.Write(bytes.TrimSpace(b))
		buf.WriteString("\n")
	}
	stages := filepath.Join(dir, "kwok-stages.yaml")
	if err := os.WriteFile(stages, buf.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("write kwok stages: %w", err)
	}
	if err := writeExecShims(dir); err != nil {
		return "", err
	}
	return stages, nil
}

// execShims answer, inside kwok's exec, the commands a collector pod runs.
// Each prints a file of the exec working directory (set per pod or per node
// by the seeded Exec/ClusterExec objects), so the answers follow the
// scenario. Anything else runs as the host's own command.
var execShims = map[string]string{
	"ps":       "ps.txt",
	"ss":       "ss.txt",
	"netstat":  "ss.txt",
	"memdump":  "memory.img",
	"avml":     "memory.img",
	"lsmod":    "lsmod.txt",
	"crictl":   "crictl.txt",
	"uname":    "uname.txt",
	"hostname": "hostname.txt",
	// collect.node-files reads the kubelet and runtime journals.
	"journalctl": "journal.txt",
}

func writeExecShims(dir string) error {
	bin := filepath.Join(dir, "exec", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	for name, file := range execShims {
		// Outside a seeded working directory, fall back to the real command so
		// the lab host's own tools keep working for kwok itself.
		script := fmt.Sprintf(`#!/bin/sh
# eksir lab exec shim: answers %q from the seeded scenario (see docs/lab.md).
if [ -f ./%s ]; then exec cat ./%s; fi
PATH=$(echo "$PATH" | sed "s#%s:##")
exec %s "$@"
`, name, file, file, bin, name)
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			return fmt.Errorf("write exec shim %s: %w", name, err)
		}
	}
	return nil
}
