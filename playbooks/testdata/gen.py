# Generates testdata/malformed/*.yaml from the cases below. "@@" marks where
# the expected error is; it is removed and written as "# error-at: L:C" on
# the first line (which shifts every line by one, accounted for).
import os
BASE = open(os.path.join(os.path.dirname(__file__), "valid", "contain.yaml")).read()
cases = {
 "yaml-syntax": "apiVersion: eksir.io/v1\nkind: Playbook\nmetadata:\n  name: x\n@@  bad: [unclosed\nsteps: []\n",
 # "empty" is written by hand: a comment-only file, error at 1:1
 "api-version": BASE.replace("apiVersion: eksir.io/v1", "apiVersion: @@eksir.io/v2"),
 "kind": BASE.replace("kind: Playbook", "kind: @@Runbook"),
 "unknown-top-field": BASE.replace("kind: Playbook\n", "kind: Playbook\n@@spec: {}\n"),
 "metadata-not-map": BASE.replace("metadata:\n  name: contain\n  description: capture volatile state, then contain and revoke\n  severity: high\n  references: [T1611]\n", "metadata: @@[contain]\n"),
 "metadata-name": BASE.replace("name: contain\n", "name: @@Contain_It\n"),
 "severity": BASE.replace("severity: high", "severity: @@urgent"),
 "input-type": BASE.replace("type: duration", "type: @@interval"),
 "input-required-default": BASE.replace("    type: pod\n    required: true\n", "    type: pod\n    required: true\n    default: @@a/b\n"),
 "input-default-type": BASE.replace("default: 10m", "default: @@ten minutes"),
 "input-duplicate": BASE.replace("  - name: window", "  - name: @@pod"),
 "step-unknown-field": BASE.replace("    timeout: 30s\n", "    timeout: 30s\n    @@retries: 3\n"),
 "step-id-dash": BASE.replace("id: volatile", "id: @@volatile-capture").replace("[volatile]", "[volatile-capture]"),
 "step-duplicate-id": BASE.replace("id: objects", "id: @@volatile"),
 "unknown-action": BASE.replace("action: test.collect", "action: @@collect.everything"),
 "unknown-param": BASE.replace("      containers: [app, sidecar]\n", "      containers: [app, sidecar]\n      depth: @@3\n"),
 "mistyped-param": BASE.replace("      containers: [app, sidecar]\n", "      containers: [app, sidecar]\n      lines: @@many\n"),
 "mistyped-list": BASE.replace("containers: [app, sidecar]", "containers: @@app"),
 "enum-param": BASE.replace("      target: ${{ inputs.pod }}\n", "      target: ${{ inputs.pod }}\n      value: @@nuke\n", 1),
 "missing-param": BASE.replace("  - id: volatile\n    action: test.volatile\n    timeout: 30s\n    with:\n      pod: ${{ inputs.pod }}\n", "  - @@id: volatile\n    action: test.volatile\n    timeout: 30s\n"),
 "needs-unknown": BASE.replace("needs: [label, objects]", "needs: @@[label, object]"),
 "cycle": BASE.replace("    requires_capture: [volatile]\n    approve: true\n", "    requires_capture: [volatile]\n    needs: @@[revoke]\n    approve: true\n"),
 "cel-syntax": BASE.replace('when: steps.objects.status == "succeeded" && steps.objects.outputs.count > 0', 'when: steps.objects.status == @@&& true'),
 "cel-type": BASE.replace('when: steps.objects.status == "succeeded" && steps.objects.outputs.count > 0', 'when: steps.objects.status @@== 1'),
 "cel-not-bool": BASE.replace('when: steps.objects.status == "succeeded" && steps.objects.outputs.count > 0', 'when: @@steps.objects.status'),
 "cel-undeclared": BASE.replace('when: steps.objects.status == "succeeded" && steps.objects.outputs.count > 0', 'when: inputs@@.node == "n1"'),
 "cel-unneeded-step": BASE.replace("needs: [label, objects]", "needs: [label]").replace('when: steps.objects', 'when: @@steps.objects'),
 "capture-order": BASE.replace("    requires_capture: [volatile]\n    approve: true\n", "    approve: true\n").replace("  - id: label\n", "  - @@id: label\n"),
 "requires-capture-contain": BASE.replace("needs: [label, objects]", "needs: [objects]\n    requires_capture: @@[volatile, label]"),
 "timeout": BASE.replace("timeout: 30s", "timeout: @@soon"),
 "on-error": BASE.replace("on_error: continue", "on_error: @@retry"),
 "approve-string": BASE.replace("approve: true", "approve: @@\"yes\""),
 "alias": BASE.replace("      pod: ${{ inputs.pod }}\n      since", "      pod: &p ${{ inputs.pod }}\n      since").replace("apiVersion", "@@apiVersion", 1),
 "two-documents": BASE + "@@---\napiVersion: eksir.io/v1\n",
 "param-expr-type": BASE.replace("since: ${{ inputs.window }}", "since: @@${{ inputs.pod }}"),
 "steps-empty": BASE[:BASE.index("steps:")] + "steps: @@[]\n",
 "partial-expression": BASE.replace('target: ${{ "sa-" + inputs.pod }}', 'target: @@sa-${{ inputs.pod }}'),
 "duplicate-key": BASE.replace("    on_error: continue\n", "    on_error: continue\n    @@on_error: abort\n"),
}
d = os.path.join(os.path.dirname(__file__), "malformed")
for name, text in cases.items():
    assert text.count("@@") == 1, name
    i = text.index("@@")
    line = text[:i].count("\n") + 1
    col = i - (text.rfind("\n", 0, i) + 1) + 1
    text = text.replace("@@", "")
    with open(os.path.join(d, name + ".yaml"), "w") as f:
        f.write("# error-at: %d:%d\n" % (line + 1, col) + text)
print(len(cases))
