"""The Kustomize overlays render with ``kubectl kustomize``, validate against a pinned Kubernetes
version's schemas (kubernetes-validate, strict: unknown fields are errors), and keep the
promises deploy/README.md makes about them."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.live import BASE_DIR

KUBERNETES_VERSION = "1.33.0"
OVERLAYS = ("staging", "production")
KUBERNETES = BASE_DIR / "deploy" / "kubernetes"


def _render(overlay: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:  # ./sr test installs it; a bare pytest run must not skip silently
        pytest.fail("The manifests' test needs kubectl (apt-get install kubectl; ./sr test does it).")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(KUBERNETES / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def manifests(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return _render(request.param)


def _of_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in manifests if doc["kind"] == kind}


def _pod_specs(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        f"{doc['kind']}/{doc['metadata']['name']}": doc["spec"]["template"]["spec"]
        for doc in manifests
        if doc["kind"] in ("Deployment", "Job")
    }


def test_every_resource_is_valid_for_the_pinned_kubernetes(manifests: list[dict[str, Any]]) -> None:
    for doc in manifests:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_every_pod_runs_locked_down(manifests: list[dict[str, Any]]) -> None:
    for name, spec in _pod_specs(manifests).items():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), name
            assert {"cpu", "memory"} <= set(resources["limits"]), name


def test_web_worker_and_beat_have_probes(manifests: list[dict[str, Any]]) -> None:
    deployments = _of_kind(manifests, "Deployment")
    web = deployments["web"]["spec"]["template"]["spec"]["containers"][0]
    assert web["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for name in ("worker", "beat"):
        probe = deployments[name]["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
        assert probe["exec"]["command"] == ["deploy/secondread.sh", "probe", name]


def test_uploads_have_pods_of_their_own_that_yield_the_cpu_to_pages(manifests: list[dict[str, Any]]) -> None:
    deployments = _of_kind(manifests, "Deployment")
    uploads = deployments["uploads"]["spec"]["template"]["spec"]["containers"][0]
    web = deployments["web"]["spec"]["template"]["spec"]["containers"][0]
    assert uploads["args"] == ["uploads"] and uploads["image"] == web["image"]
    assert uploads["readinessProbe"]["httpGet"]["path"] == "/readyz"

    def millicores(container: dict[str, Any]) -> float:
        cpu = str(container["resources"]["requests"]["cpu"])
        return float(cpu[:-1]) if cpu.endswith("m") else float(cpu) * 1000

    # The kernel shares a busy node's CPU by request: pages first.
    assert millicores(uploads) < millicores(web)
    # Caddy sends /intake/tus/ to them, through their Service, which only Caddy may reach.
    caddy = deployments["caddy"]["spec"]["template"]["spec"]["containers"][0]
    upstream = {item["name"]: item.get("value") for item in caddy["env"]}["SR_UPLOADS_UPSTREAM"]
    service = _of_kind(manifests, "Service")[upstream.split(":")[0]]
    assert service["spec"]["selector"]["component"] == "uploads"
    assert int(upstream.split(":")[1]) in {port["port"] for port in service["spec"]["ports"]}
    policy = _of_kind(manifests, "NetworkPolicy")["uploads-from-caddy"]["spec"]
    assert policy["podSelector"]["matchLabels"]["component"] == "uploads"
    assert policy["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["component"] == "caddy"
    assert {"uploads"} <= set(_of_kind(manifests, "PodDisruptionBudget"))


def test_beat_is_a_singleton_and_caddy_has_two_replicas_on_shared_storage(
    manifests: list[dict[str, Any]],
) -> None:
    deployments = _of_kind(manifests, "Deployment")
    assert deployments["beat"]["spec"]["replicas"] == 1
    assert deployments["beat"]["spec"]["strategy"] == {"type": "Recreate"}
    assert deployments["caddy"]["spec"]["replicas"] == 2
    assert _of_kind(manifests, "PersistentVolumeClaim")["caddy-data"]["spec"]["accessModes"] == [
        "ReadWriteMany"
    ]


def test_disruption_budgets_autoscaling_and_network_policies(manifests: list[dict[str, Any]]) -> None:
    budgets = _of_kind(manifests, "PodDisruptionBudget")
    assert {"web", "worker", "caddy"} <= set(budgets)
    assert _of_kind(manifests, "HorizontalPodAutoscaler")["web"]["spec"]["scaleTargetRef"]["name"] == "web"
    policies = _of_kind(manifests, "NetworkPolicy")
    assert policies["default-deny-ingress"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    web_from = policies["web-from-caddy"]["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert web_from["component"] == "caddy"


def test_the_dicom_gateway_listens_for_private_networks_only(manifests: list[dict[str, Any]]) -> None:
    gateway = _of_kind(manifests, "Deployment")["dicom-gateway"]["spec"]["template"]["spec"]
    container = gateway["containers"][0]
    assert container["args"] == ["manage", "dicom_gateway", "--port", "11112"]
    assert container["readinessProbe"]["tcpSocket"]["port"] == "dicom"
    service = _of_kind(manifests, "Service")["dicom-gateway"]["spec"]
    assert [(p["port"], p["targetPort"]) for p in service["ports"]] == [(11112, "dicom")]
    private = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
    assert service["loadBalancerSourceRanges"] == private
    policy = _of_kind(manifests, "NetworkPolicy")["dicom-gateway-from-vpn"]["spec"]["ingress"][0]
    assert [peer["ipBlock"]["cidr"] for peer in policy["from"]] == private
    assert policy["ports"] == [{"port": 11112, "protocol": "TCP"}]
    config = _of_kind(manifests, "ConfigMap")
    app_config = next(doc["data"] for name, doc in config.items() if name.startswith("secondread"))
    assert app_config["DICOM_GATEWAY_PORT"] == "11112" and app_config["DICOM_GATEWAY_HOST"]
    # Compose: the same gateway behind the "dicom" profile, its address handed to the app.
    compose = yaml.safe_load((BASE_DIR / "deploy" / "compose.yaml").read_text())
    service = compose["services"]["dicom-gateway"]
    assert service["profiles"] == ["dicom"] and service["command"][:2] == ["manage", "dicom_gateway"]
    assert {"DICOM_GATEWAY_HOST", "DICOM_GATEWAY_PORT"} <= set(compose["x-app"]["environment"])


def test_the_migrate_job_is_named_after_the_release(manifests: list[dict[str, Any]]) -> None:
    web = _of_kind(manifests, "Deployment")["web"]
    tag = web["spec"]["template"]["spec"]["containers"][0]["image"].rsplit(":", 1)[1]
    job = next(doc for doc in manifests if doc["kind"] == "Job")
    assert job["metadata"]["name"] == f"migrate-{tag}"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]


def test_caddy_mounts_the_repositorys_one_caddyfile(manifests: list[dict[str, Any]]) -> None:
    config = next(doc for doc in _of_kind(manifests, "ConfigMap").values() if "Caddyfile" in doc["data"])
    caddy = BASE_DIR / "deploy" / "caddy"
    assert config["data"]["Caddyfile"] == (caddy / "Caddyfile").read_text()
    for snippet in caddy.glob("tls-*.caddy"):
        assert config["data"][snippet.name] == snippet.read_text()


def test_the_secret_examples_name_every_secret_the_app_and_compose_read() -> None:
    secrets = {
        doc["metadata"]["name"]: doc["stringData"]
        for doc in yaml.safe_load_all((KUBERNETES / "secret.example.yaml").read_text())
    }
    app_secrets = {
        "SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "S3_ACCESS_KEY",
        "S3_SECRET_KEY",
        "EMAIL_URL",
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "SENTRY_DSN",
    }
    assert app_secrets <= set(secrets["secondread"])
    assert {"ACME_DNS_API_TOKEN", "ACME_EMAIL"} <= set(secrets["caddy"])
    compose = yaml.safe_load((BASE_DIR / "deploy" / "compose.yaml").read_text())
    compose_env = set(compose["x-app"]["environment"])
    assert app_secrets <= compose_env
    # The migrate step connects as the owner and creates the application's role (two roles).
    assert {"DATABASE_DIRECT_URL", "DATABASE_APP_URL"} <= set(secrets["secondread"])
    migrate_env = compose["services"]["migrate"]["environment"]
    assert migrate_env["DATABASE_APP_URL"].split("@")[0] in compose["x-app"]["environment"]["DATABASE_URL"]
    assert migrate_env["DATABASE_URL"] != compose["x-app"]["environment"]["DATABASE_URL"]


def test_the_image_context_leaves_out_local_data() -> None:
    ignored = set((BASE_DIR / ".dockerignore").read_text().splitlines())
    assert {".data/", ".venv/", "**/node_modules/", ".git/", "static/dist/"} <= ignored
