# An independent reading of a GuardDuty finding's targets, for the
# differential test of package finding: the same fields, by jq.
def up: walk(if type == "object" then with_entries(.key |= ((.[0:1] | ascii_upcase) + .[1:])) else . end);
up
| (if has("Findings") then .Findings[0] elif has("Detail") then .Detail else . end) as $f
| $f.Resource as $r
| ($r.KubernetesDetails.KubernetesWorkloadDetails // null) as $w
| ($r.AccessKeyDetails // null) as $k
| {
    id: $f.Id,
    type: $f.Type,
    severity: $f.Severity,
    account: $f.AccountId,
    region: $f.Region,
    resource_type: $r.ResourceType,
    cluster: ($r.EksClusterDetails.Name // ([$r.InstanceDetails.Tags[]? | select(.Key == "eks:cluster-name") | .Value][0]) // ""),
    pod: (if $w == null then ""
          else ({"pods": "", "deployments": "deployment:", "statefulsets": "statefulset:", "daemonsets": "daemonset:", "jobs": "job:"}[$w.Type | ascii_downcase]) + $w.Namespace + "/" + $w.Name
          end),
    instance: ($r.InstanceDetails.InstanceId // ""),
    "access-key": (if $k != null and $k.UserType == "IAMUser" then $k.AccessKeyId else "" end),
    "iam-role": (if $k != null and $k.UserType == "AssumedRole" then "arn:\($f.Partition // "aws"):iam::\($f.AccountId):role/\($k.UserName)" else "" end)
  }
