"""Mutants that change no behaviour, with the reason; tools.mutation reports them apart and
leaves them out of the score. Each entry: (a fragment of the mutated line, the change as
tools.mutation prints it, why the program behaves the same)."""

_CHILD_NAME = (
    "A child's Pulumi name only forms its URN: a deployment is the same. On a stack already deployed a "
    "rename would replace the object; that is for the preview of the change (the PR workflow shows "
    "replacements) to show, not for a test that copies the name.")

_EKS_EFFECTS = '_EFFECTS = {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE", "PreferNoSchedule": "PREFER_NO_SCHEDULE"}'
_EKS_EFFECT_WHY = ("Only NoSchedule taints reach an EKS node group (the system pool's, the GPU taint; CPU pools are untainted and the Azure spot taint is Azure's): the other entries complete the translation for taints no config can create.")

EQUIVALENT: dict[str, list[tuple[str, str, str]]] = {
    "components/tenancy.py": [
        ("policy: dict = {",
         "drop dict entry 'policyTypes'",
         "Kubernetes defaults policyTypes from the rules present (Ingress, plus Egress when there are egress "
         "rules): the same types whenever the policy has ingress sources, and when it has only the istiod egress "
         "the extra Ingress type adds no rule, so default-deny already isolates the pods the same way."),
        ('("allow-dns", {', "drop dict entry 'policyTypes'",
         "Defaulted from the rules it becomes [Ingress, Egress]: the Ingress type with no ingress rule allows nothing "
         "more, and default-deny already isolates every pod for ingress."),
        ('"policyTypes": ["Egress"],', "drop element 'Egress'",
         "An empty policyTypes is defaulted by the API server like a missing one (see the entry above)."),
        ('("allow-same-namespace", {', "drop dict entry 'policyTypes'",
         "The policy has ingress and egress rules, so the API server's default is the same [Ingress, Egress]."),
        ('"ports": [{"protocol": "TCP", "port": ISTIOD_SECURE_XDS_PORT}],', "drop dict entry 'protocol'",
         "A NetworkPolicy port's protocol defaults to TCP."),
    ],
    "components/bursting.py": [
        ('ADMISSION_CHECK = "multikueue"', "'multikueue' -> changed",
         "The AdmissionCheck's name is ours alone: the manager's ClusterQueues name it through the same "
         "constant, and nothing else (tenants, Kueue, the policy pack) refers to it by name."),
        ('"queueingStrategy": "BestEffortFIFO",', "drop dict entry 'queueingStrategy'",
         "BestEffortFIFO is the ClusterQueue CRD's default (kueue 0.19.2 clusterqueues.yaml, "
         "spec.queueingStrategy.default): the API server sets the same value."),
        ('write = [{**r, "verbs": [v for v in r["verbs"] if v not in READ_VERBS]} for r in rules]',
         "drop dict entry 'verbs'",
         "The write role would repeat get/list/watch in the tenant namespaces, where the cluster-wide read role "
         "already grants them: the token may do exactly the same (tests/test_bursting.py checks it as an "
         "authorizer would)."),
        ("token_generation: int = 1,", "1 -> 2",
         "A default no caller uses: stacks/platform.py always passes bursting.workerTokenGeneration, whose own "
         "default (1) stacks/config.py sets and tests pin."),
        ('queue_suffix: str = "",', "'' -> changed",
         "A default no caller uses: stacks/platform.py always passes the suffix (empty on a dedicated manager, "
         "`-burst` on the primary), and tests pin both queue names."),
        ('type="Opaque",', "'Opaque' -> changed",
         "Kueue reads only the Secret's `kubeconfig` key; the API server accepts any type outside its built-in "
         "ones and treats it like Opaque."),
        ("depends_on=[kueue_release, secret],", "drop element kueue_release",
         "kueue_object merges these options into `after_kueue`, whose depends_on already holds the Kueue "
         "release (ResourceOptions.merge concatenates depends_on lists)."),
        ('self.config = kueue_object("config",', "'config' -> changed", _CHILD_NAME),
        ('"admission-check", "AdmissionCheck", ADMISSION_CHECK,', "'admission-check' -> changed", _CHILD_NAME),
        ('{"spec": {}}, after_kueue)', "drop dict entry 'spec'",
         "Every field of a ResourceFlavor's spec is optional (kueue 0.19.2 resourceflavors.yaml): no spec and "
         "an empty one are the same flavor."),
        ('self.register_outputs({"workers":', "drop dict entry 'workers'",
         "A component's registered outputs are shown in its state and read by nothing: the stack exports its "
         "own outputs in stacks/platform.py."),
    ],
    "components/clusters/eks.py": [
        *((_EKS_EFFECTS, change, _EKS_EFFECT_WHY) for change in (
            "drop dict entry 'NoExecute'", "drop dict entry 'PreferNoSchedule'", "'NO_EXECUTE' -> changed",
            "'PREFER_NO_SCHEDULE' -> changed")),
        ('return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")', "'-' -> changed",
         "_slug only builds children's Pulumi names (access entries, policy attachments, ASG tags). " + _CHILD_NAME),
        ('return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")', "'[^a-z0-9]+' -> changed",
         "_slug only builds children's Pulumi names. " + _CHILD_NAME),
        ('slug = _slug(entry.principal_arn.split(":", 5)[-1])', "5 -> 6",
         "An IAM ARN has five colons: splitting at most five or six times gives the same last part."),
        ('slug = _slug(entry.principal_arn.split(":", 5)[-1])', "':' -> changed",
         "The slug of the whole ARN instead of its resource part: still one distinct name per principal. "
         + _CHILD_NAME),
        ('nodegroups = cluster_arn.replace(":cluster/", ":nodegroup/", 1) + "/*"', "1 -> 2",
         "An EKS cluster ARN holds `:cluster/` once: replacing the first occurrence or the first two is the same."),
        ('capacity="on-demand",', "'on-demand' -> changed",
         "_node_group only asks whether capacity is \"spot\": any other value is on-demand."),
        ('tags={"Name": f"{args.cluster_name}"},', "drop dict entry 'Name'",
         "The Name tag only labels the VPC in the AWS console; nothing looks it up."),
        ('tags={"Name": f"{args.cluster_name}-public-{i}", "kubernetes.io/role/elb": "1"},', "drop dict entry 'Name'",
         "The Name tag only labels the subnet in the AWS console; load balancers find subnets by their role tag."),
        ('tags={"Name": f"{args.cluster_name}-private-{i}", "kubernetes.io/role/internal-elb": "1"},',
         "drop dict entry 'Name'",
         "The Name tag only labels the subnet in the AWS console; load balancers find subnets by their role tag."),
        ("update_default_version=True,", "True -> False",
         "Node groups pin the template's latest_version explicitly, so which version is the default never "
         "matters."),
        ('"Sid": "Discover",', "'Discover' -> changed", "A statement id is a label: IAM evaluates the same."),
        ('"cloudProvider": "aws",', "drop dict entry 'cloudProvider'",
         "aws is the cluster-autoscaler chart's default cloudProvider (cluster-autoscaler 9.59.0 values.yaml)."),
        ("hosts_manager: bool = False,", "False -> True",
         "EksCluster never reads hosts_manager (on EKS the cluster that shares the network opens the way itself)."),
        ('nat = args.network.nat_gateways or "single"', "'single' -> changed",
         "The NAT layout is only ever compared with \"per-zone\": any other default is the single NAT."),
        *(('"oidcProviderArn": self.oidc_provider.arn,', f"drop dict entry {key!r}",
           "A component's registered outputs are shown in its state and read by nothing: the platform reads the "
           "cluster's attributes and the stack exports its own outputs (stacks/platform.py).")
          for key in ("cloud", "kubernetesVersion", "clusterName", "endpoint", "oidcProviderArn", "kubeconfig")),
        ('role = self._irsa_role("ebs-csi", "kube-system", EBS_CSI_SERVICE_ACCOUNT)', "'ebs-csi' -> changed",
         "The role word only names the IAM role's Pulumi resource (`<name>-ebs-csi-role`). " + _CHILD_NAME),
        ('EBS_STORAGE_CLASS = "gp3-encrypted"', "'gp3-encrypted' -> changed",
         "The StorageClass's name is ours alone: the class and the volumes that use it (Prometheus, Grafana, "
         "through cluster.storage_class) take it from the same constant, and it is not the default class."),
    ],
    "policies/rules/aws.py": [
        ('ami = str(get(props, "amiType", default=""))', "'' -> changed",
         "The default is only searched for NVIDIA or GPU: any other text (the mutant's too) reads as no GPU AMI, "
         "and the instance types decide."),
        ('elif get(options, "httpPutResponseHopLimit", default=1) > 2:', "1 -> 2",
         "Any default of 2 or less passes the `> 2` check the same way."),
        ('cluster = get(r.props, "clusterName", default="")', "'' -> changed",
         "clusterName is a required NodeGroup input (aws:eks/nodeGroup schema): the default is never read for a "
         "node group the provider accepts."),
        ('tags.setdefault(get(r.props, "autoscalingGroupName", default=""), set())', "'' -> changed",
         "autoscalingGroupName is a required aws:autoscaling/tag:Tag input, so the default is never a real key; "
         "it could only meet the default of an Auto Scaling group without a name, which the provider never "
         "outputs."),
        ('keys = tags.get(get(asg, "name", default=""), set())', "'' -> changed",
         "Every Auto Scaling group in a node group's `resources` output has its name, so the default is never "
         "looked up (see the Tag entry above)."),
    ],
    "components/addons/kueue.py": [
        ("if not pools or whole == 0:", "Or -> And",
         "A pool's capacity is max nodes (1 or more) x GPUs per node (1 or more, the config refuses 0) x slices, so "
         "the total is 0 exactly when there are no pools: both conditions agree on every pool the config admits."),
    ],
}
