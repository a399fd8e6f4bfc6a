"""Checks on rendered manifests (helm template, kubectl kustomize).

  manifests.py hardening FILE   every Deployment's pod is hardened as the
                                README promises; exit 1 listing what is not
  manifests.py args FILE        the operator container's args, one per line
  manifests.py env FILE         the names of its environment variables
  manifests.py names FILE       "kind namespace name" of each object
"""

import sys

import yaml

CERTS_DIR = "/etc/maestro/certs"


def docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def deployments(objs):
    return [o for o in objs if o.get("kind") == "Deployment"]


def manager(dep):
    containers = dep["spec"]["template"]["spec"]["containers"]
    for c in containers:
        if c.get("name") == "manager":
            return c
    raise SystemExit("Deployment %s has no container named manager" % dep["metadata"]["name"])


def hardening(objs):
    problems = []
    deps = deployments(objs)
    if not deps:
        problems.append("no Deployment rendered")
    for dep in deps:
        name = dep["metadata"]["name"]
        pod = dep["spec"]["template"]["spec"]
        psc = pod.get("securityContext") or {}

        def need(cond, what):
            if not cond:
                problems.append("%s: %s" % (name, what))

        need(psc.get("runAsNonRoot") is True, "pod securityContext.runAsNonRoot is not true")
        need((psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault",
             "pod seccompProfile is not RuntimeDefault")
        need(psc.get("runAsUser", 0) != 0, "pod runs as uid 0")
        need(pod.get("hostNetwork") is not True and pod.get("hostPID") is not True,
             "pod uses the host's namespaces")
        for c in pod["containers"] + (pod.get("initContainers") or []):
            cname = "%s/%s" % (name, c["name"])
            sc = c.get("securityContext") or {}
            caps = (sc.get("capabilities") or {})
            for cond, what in [
                (sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation is not false"),
                (sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem is not true"),
                (sc.get("privileged") is not True, "is privileged"),
                ("ALL" in (caps.get("drop") or []), "does not drop ALL capabilities"),
                (not caps.get("add"), "adds capabilities"),
            ]:
                if not cond:
                    problems.append("%s: %s" % (cname, what))
            res = c.get("resources") or {}
            for kind in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in (res.get(kind) or {}):
                        problems.append("%s: no %s.%s" % (cname, kind, r))
            if ":" not in c.get("image", "").rsplit("/", 1)[-1] and "@" not in c.get("image", ""):
                problems.append("%s: image %r has no tag or digest" % (cname, c.get("image")))
            if c.get("image", "").endswith(":latest"):
                problems.append("%s: image %r uses :latest" % (cname, c.get("image")))
        m = manager(dep)
        ports = {p.get("name"): p.get("containerPort") for p in m.get("ports") or []}
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = ((m.get(probe) or {}).get("httpGet") or {})
            need(get.get("path") == path, "%s is not an HTTP GET of %s" % (probe, path))
            port = get.get("port")
            need(port in ports or port in ports.values(), "%s port %r is not a container port" % (probe, port))
        # TLS material, when used, comes from a Secret at /etc/maestro/certs.
        args = list(m.get("args") or [])
        args += ["--%s=%s" % (e["name"], e.get("value", "")) for e in m.get("env") or []]
        tls_flags = ("--ca-file=", "--cert-file=", "--MAESTRO_CA_FILE=", "--MAESTRO_CERT_FILE=")
        if any(a.startswith(tls_flags) for a in args):
            mounts = {v["name"]: v for v in m.get("volumeMounts") or []}
            vols = {v["name"]: v for v in pod.get("volumes") or []}
            mount = next((v for v in mounts.values() if v.get("mountPath") == CERTS_DIR), None)
            need(mount is not None, "no volume mounted at " + CERTS_DIR)
            if mount:
                need(mount.get("readOnly") is True, CERTS_DIR + " is not mounted read-only")
                need("secret" in vols.get(mount["name"], {}), CERTS_DIR + " is not a Secret volume")
        if pod.get("automountServiceAccountToken") is False:
            problems.append("%s: the operator needs its ServiceAccount token" % name)
    return problems


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    cmd, path = sys.argv[1], sys.argv[2]
    objs = docs(path)
    if cmd == "hardening":
        problems = hardening(objs)
        for p in problems:
            print("hardening: " + p, file=sys.stderr)
        sys.exit(1 if problems else 0)
    elif cmd == "args":
        for dep in deployments(objs):
            for a in manager(dep).get("args") or []:
                print(a)
    elif cmd == "env":
        for dep in deployments(objs):
            for e in manager(dep).get("env") or []:
                print(e["name"])
    elif cmd == "names":
        for o in objs:
            print(o["kind"], o["metadata"].get("namespace", "-"), o["metadata"]["name"])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
