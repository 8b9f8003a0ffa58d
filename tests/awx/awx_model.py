# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What AWX makes of playbooks/awx_configure.yml, and a job run the way AWX runs one.

No AWX server runs here. This module reads the awx.awx tasks of awx_configure.yml (the
definitions themselves, rendered with Ansible's own templating and the operator's
variables), checks them against the rules the AWX API applies when they are created, and
builds for a job template the private data directory AWX hands to ansible-runner:

- ``project/``: the project checkout (this repository);
- ``inventory/hosts``: an executable script printing the inventory as JSON, as AWX writes
  it (inventory variables under ``all``, the groups, ``_meta.hostvars``);
- ``env/extravars``: the job template's extra variables, the launch-time ones when the
  template asks for them, and the ``awx_*`` / ``tower_*`` job variables;
- each credential rendered through its credential type's injectors as
  ``awx_plugins.interfaces`` ``inject_credential`` does: ``file`` templates written to
  ``env/`` (0600) with their paths in ``tower.filename`` (``template`` -> a string,
  ``template.<name>`` -> ``tower.filename.<name>``), ``env`` templates into the
  environment (minus AWX's block list), ``extra_vars`` rendered (nested mappings and lists
  included) into a YAML file passed as ``-e @file``; templates are rendered in Jinja2's
  ImmutableSandboxedEnvironment with the credential's non-empty inputs and ``tower``;
- the built-in Machine credential as AWX passes it: ``-u <username>`` and the SSH key in
  ``env/ssh_key`` (ansible-runner loads it into an ssh-agent for the run).

Differences from a real AWX job, stated in docs/awx.md: no container (the private data
directory's paths are host paths, not /runner/...), the collection comes from the checkout
(.build/collections) instead of the execution environment image, and the inventory host is
this machine with ansible_connection=local.
"""

import json
import os
import re
import shlex
import stat
import sys
import tempfile

import yaml
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AWX_CONFIGURE = os.path.join(ROOT, "playbooks", "awx_configure.yml")

# awx_plugins.interfaces._temporary_private_inject_api.ENV_BLOCKLIST
ENV_BLOCKLIST = frozenset(
    (
        "VIRTUAL_ENV",
        "PATH",
        "PYTHONPATH",
        "JOB_ID",
        "INVENTORY_ID",
        "INVENTORY_SOURCE_ID",
        "INVENTORY_UPDATE_ID",
        "AD_HOC_COMMAND_ID",
        "REST_API_URL",
        "REST_API_TOKEN",
        "MAX_EVENT_RES",
        "CALLBACK_QUEUE",
        "CALLBACK_CONNECTION",
        "CACHE",
        "JOB_CALLBACK_DEBUG",
        "INVENTORY_HOSTVARS",
        "AWX_HOST",
        "PROJECT_REVISION",
        "SUPERVISOR_CONFIG_PATH",
    )
)
# The built-in credential types the definitions use, with their input fields.
MANAGED_TYPES = {
    "Machine": {
        "kind": "ssh",
        "fields": ["username", "password", "ssh_key_data", "ssh_public_key_data", "ssh_key_unlock", "become_method", "become_username", "become_password"],
    },
}


class DefinitionError(Exception):
    """A definition the AWX API (or a job launch) would refuse; the message says which and why."""


def load_definitions(operator_vars):
    """Every object awx_configure.yml creates, rendered with its play vars + operator_vars."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    loader = DataLoader()
    play = loader.load_from_file(AWX_CONFIGURE, trusted_as_template=True)[0]
    variables = dict(play.get("vars") or {})
    variables.update(operator_vars)
    defs = {"credential_types": {}, "credentials": {}, "inventories": {}, "hosts": {}, "groups": {}, "job_templates": [], "schedules": [], "projects": {}}
    for task in play["tasks"]:
        module = next(key for key in task if key.startswith(("awx.awx.", "ansible.builtin.")))
        if not module.startswith("awx.awx."):
            continue
        kind = module.split(".")[-1]
        items = Templar(loader=loader, variables=variables).template(task["loop"]) if "loop" in task else [None]
        for item in items:
            scope = dict(variables, item=item) if item is not None else variables
            args = Templar(loader=loader, variables=scope).template(task[module])
            args = _plain(args)
            if kind == "credential_type":
                defs["credential_types"][args["name"]] = args
            elif kind == "credential":
                defs["credentials"][args["name"]] = args
            elif kind == "inventory":
                defs["inventories"][args["name"]] = args
            elif kind == "host":
                defs["hosts"][args["name"]] = args
            elif kind == "group":
                defs["groups"][args["name"]] = args
            elif kind == "job_template":
                defs["job_templates"].append(args)
            elif kind == "schedule":
                defs["schedules"].append(args)
            elif kind == "project":
                defs["projects"][args["name"]] = args
    validate(defs)
    return defs


def _plain(value):
    """Ansible's tagged str/dict/list -> plain Python (yaml.safe_dump and jinja2 want them)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def validate(defs):
    """The checks the AWX API makes when these objects are created or a job is launched."""
    sandbox = ImmutableSandboxedEnvironment()
    for name, ctype in defs["credential_types"].items():
        if ctype.get("kind") not in ("cloud", "net"):
            raise DefinitionError("credential type %s: kind must be cloud or net (AWX refuses %r)." % (name, ctype.get("kind")))
        fields = ctype.get("inputs", {}).get("fields", [])
        ids = [str(f["id"]) for f in fields]
        missing = set(ctype.get("inputs", {}).get("required", [])) - set(ids)
        if missing:
            raise DefinitionError("credential type %s: required names unknown fields %s." % (name, sorted(missing)))
        injectors = ctype.get("injectors", {})
        unknown = set(injectors) - {"file", "env", "extra_vars"}
        if unknown:
            raise DefinitionError("credential type %s: unknown injector kinds %s." % (name, sorted(unknown)))
        files = injectors.get("file", {})
        for label in files:
            if not re.match(r"^template(\.[a-zA-Z_]+[a-zA-Z0-9_]*)?$", label):
                raise DefinitionError("credential type %s: file injector %r must be template or template.<name>." % (name, label))
        file_names = {label.split(".", 1)[1] for label in files if "." in label}
        for where, templates in _injector_templates(injectors):
            for template in templates:
                parsed = sandbox.parse(template)
                names = meta.find_undeclared_variables(parsed) - {"tower", "awx"}
                if names - set(ids):
                    raise DefinitionError("credential type %s: %s refers to %s, which are not its input fields." % (name, where, sorted(names - set(ids))))
                for ref in re.findall(r"tower\.filename\.([A-Za-z0-9_]+)", template):
                    if ref not in file_names:
                        raise DefinitionError(
                            "credential type %s: %s uses tower.filename.%s but no file injector template.%s exists." % (name, where, ref, ref)
                        )
        for var in list(injectors.get("env", {})):
            if var.startswith("ANSIBLE_") or var in ENV_BLOCKLIST:
                raise DefinitionError("credential type %s: env %s is reserved by AWX." % (name, var))
        for var in injectors.get("extra_vars", {}):
            if str(var).startswith("ANSIBLE_"):
                raise DefinitionError("credential type %s: extra var %s is reserved by AWX." % (name, var))
    for name, cred in defs["credentials"].items():
        ctype = cred["credential_type"]
        fields = _type_fields(defs, ctype, name)
        extra = set(cred.get("inputs", {})) - set(fields)
        if extra:
            raise DefinitionError("credential %s: inputs %s are not fields of %s." % (name, sorted(extra), ctype))
        if ctype in defs["credential_types"]:
            for req in defs["credential_types"][ctype].get("inputs", {}).get("required", []):
                if not cred.get("inputs", {}).get(req):
                    raise DefinitionError("credential %s: required input %s is empty." % (name, req))
    for jt in defs["job_templates"]:
        if jt["inventory"] not in defs["inventories"]:
            raise DefinitionError("job template %s: inventory %s is not defined." % (jt["name"], jt["inventory"]))
        if jt["project"] not in defs["projects"]:
            raise DefinitionError("job template %s: project %s is not defined." % (jt["name"], jt["project"]))
        if not os.path.isfile(os.path.join(ROOT, jt["playbook"])):
            raise DefinitionError("job template %s: playbook %s is not in the project." % (jt["name"], jt["playbook"]))
        seen = {}
        for cname in jt.get("credentials", []):
            if cname not in defs["credentials"]:
                raise DefinitionError("job template %s: credential %s is not defined." % (jt["name"], cname))
            ctype = defs["credentials"][cname]["credential_type"]
            if ctype in seen:
                raise DefinitionError("job template %s: cannot assign multiple %s credentials (%s, %s)." % (jt["name"], ctype, seen[ctype], cname))
            seen[ctype] = cname
    names = {jt["name"] for jt in defs["job_templates"]}
    for sched in defs["schedules"]:
        if sched["unified_job_template"] not in names:
            raise DefinitionError("schedule %s: job template %s is not defined." % (sched["name"], sched["unified_job_template"]))


def _type_fields(defs, ctype, cred_name):
    if ctype in defs["credential_types"]:
        return [str(f["id"]) for f in defs["credential_types"][ctype].get("inputs", {}).get("fields", [])]
    if ctype in MANAGED_TYPES:
        return MANAGED_TYPES[ctype]["fields"]
    raise DefinitionError("credential %s: credential type %s is neither defined in awx_configure.yml nor a built-in type." % (cred_name, ctype))


def _injector_templates(injectors):
    for label, template in injectors.get("file", {}).items():
        yield "file %s" % label, [template]
    for var, template in injectors.get("env", {}).items():
        yield "env %s" % var, [template]

    def leaves(node):
        if isinstance(node, dict):
            for k, v in node.items():
                yield str(k)
                yield from leaves(v)
        elif isinstance(node, list):
            for v in node:
                yield from leaves(v)
        else:
            yield str(node)

    yield "extra_vars", list(leaves(injectors.get("extra_vars", {})))


# --- AWX's rrule rules (awx/api/serializers.py SchedulePreviewSerializer.validate_rrule) ---
def parse_rrule(rrule_text):
    """The rrule set AWX stores (dateutil), after AWX's own checks; raises DefinitionError."""
    from dateutil import rrule as du_rrule

    text = rrule_text.strip()
    starts = re.findall(r"DTSTART[;:]", text)
    if len(starts) != 1:
        raise DefinitionError("rrule %r: needs exactly one DTSTART." % text)
    if not re.match(r"^DTSTART(;TZID=[^:]+)?:\d{8}T\d{6}Z? ", text):
        raise DefinitionError("rrule %r: DTSTART must be DTSTART;TZID=<zone>:YYYYMMDDTHHMMSS (or ...Z)." % text)
    rules = re.findall(r"RRULE:[^ ]+", text)
    if not rules:
        raise DefinitionError("rrule %r: needs an RRULE." % text)
    for rule in rules:
        if "FREQ=" not in rule:
            raise DefinitionError("rrule %r: an RRULE needs FREQ." % text)
        for forbidden in ("FREQ=SECONDLY", "FREQ=MINUTELY", "BYWEEKNO", "BYYEARDAY", "BYSECOND", "BYEASTER"):
            if forbidden in rule:
                raise DefinitionError("rrule %r: AWX does not support %s." % (text, forbidden))
        count = re.search(r"COUNT=(\d+)", rule)
        if count and int(count.group(1)) > 999:
            raise DefinitionError("rrule %r: COUNT above 999." % text)
        if re.search(r"BYDAY=[^;]*[0-9]", rule):
            raise DefinitionError("rrule %r: BYDAY with a numeric prefix is not supported." % text)
    # AWX separates the parts with spaces; dateutil wants one per line.
    return du_rrule.rrulestr(text.replace(" ", "\n"), forceset=True)


# --- the private data directory --------------------------------------------------------
def _sandbox_render(sandbox, template, namespace):
    return sandbox.from_string(template).render(**namespace)


def _build_extra_vars(sandbox, namespace, node):
    if isinstance(node, dict):
        return {str(_build_extra_vars(sandbox, namespace, k)): _build_extra_vars(sandbox, namespace, v) for k, v in node.items()}
    if isinstance(node, list):
        return [_build_extra_vars(sandbox, namespace, v) for v in node]
    return _sandbox_render(sandbox, node, namespace)


class _Namespace(object):
    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)


def inject_credential(ctype, cred, env, args, private_data_dir):
    """awx_plugins.interfaces inject_credential for a custom type: file, env, extra_vars."""
    fields = ctype.get("inputs", {}).get("fields", [])
    namespace = {}
    for key, value in cred.get("inputs", {}).items():
        if isinstance(value, bool) or value:
            namespace[key] = value
    for field in fields:
        if field.get("type") == "boolean" and field["id"] not in namespace:
            namespace[field["id"]] = False
        if field.get("format") == "ssh_private_key" and field["id"] in namespace and not str(namespace[field["id"]]).endswith("\n"):
            namespace[field["id"]] = str(namespace[field["id"]]) + "\n"
    tower = _Namespace()
    namespace["tower"] = tower
    sandbox = ImmutableSandboxedEnvironment()
    injectors = ctype.get("injectors", {})
    single, files = None, {}
    for label, template in injectors.get("file", {}).items():
        data = _sandbox_render(sandbox, template, namespace)
        path = tempfile.mkstemp(dir=os.path.join(private_data_dir, "env"))[1]
        with open(path, "w") as handle:
            handle.write(data)
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        if "." not in label:
            single = path
        else:
            files[label.split(".", 1)[1]] = path
    tower.filename = single or _Namespace(**files)
    for var, template in injectors.get("env", {}).items():
        if var in ENV_BLOCKLIST:
            continue
        env[var] = _sandbox_render(sandbox, template, namespace)
    extra_vars = _build_extra_vars(sandbox, namespace, injectors.get("extra_vars", {}))
    if extra_vars:
        handle, path = tempfile.mkstemp(dir=os.path.join(private_data_dir, "env"))
        with os.fdopen(handle, "w") as out:
            out.write(yaml.safe_dump(extra_vars))
        os.chmod(path, stat.S_IRUSR)
        args.extend(["-e", "@%s" % path])
    return extra_vars


def inject_machine(cred, args, private_data_dir):
    """The built-in Machine credential: -u <username>; the key goes to ansible-runner's ssh-agent."""
    inputs = cred.get("inputs", {})
    if inputs.get("username"):
        args.extend(["-u", inputs["username"]])
    if inputs.get("ssh_key_data"):
        key = inputs["ssh_key_data"]
        path = os.path.join(private_data_dir, "env", "ssh_key")
        with open(path, "w") as handle:
            handle.write(key if key.endswith("\n") else key + "\n")
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)


def inventory_script(defs, inventory_name):
    """The JSON AWX's inventory script prints for the job."""
    inv = defs["inventories"][inventory_name]
    hosts = {name: h for name, h in defs["hosts"].items() if h["inventory"] == inventory_name}
    data = {
        "all": {"vars": inv.get("variables") or {}, "hosts": [], "children": []},
        "_meta": {"hostvars": {name: h.get("variables") or {} for name, h in hosts.items()}},
    }
    grouped = set()
    for name, group in defs["groups"].items():
        if group["inventory"] != inventory_name:
            continue
        data[name] = {"hosts": list(group.get("hosts") or []), "vars": group.get("variables") or {}}
        data["all"]["children"].append(name)
        grouped.update(group.get("hosts") or [])
    data["all"]["hosts"] = sorted(set(hosts) - grouped)
    return data


def build_private_data_dir(defs, jt, private_data_dir, job_id, launch_vars=None, base_env=None):
    """The private data directory of one job of ``jt``; returns what was injected."""
    if launch_vars and not jt.get("ask_variables_on_launch"):
        raise DefinitionError("job template %s does not prompt for variables on launch; AWX ignores %s." % (jt["name"], sorted(launch_vars)))
    os.makedirs(os.path.join(private_data_dir, "env"))
    os.makedirs(os.path.join(private_data_dir, "inventory"))
    os.symlink(ROOT, os.path.join(private_data_dir, "project"))
    script = os.path.join(private_data_dir, "inventory", "hosts")
    with open(script, "w") as handle:
        handle.write("#!%s\nimport json, sys\nprint(json.dumps(%r))\n" % (sys.executable, inventory_script(defs, jt["inventory"])))
    os.chmod(script, 0o700)
    extravars = dict(jt.get("extra_vars") or {})
    extravars.update(launch_vars or {})
    for prefix in ("awx", "tower"):
        extravars.update(
            {
                prefix + "_job_id": job_id,
                prefix + "_job_launch_type": "manual",
                prefix + "_job_template_name": jt["name"],
                prefix + "_inventory_name": jt["inventory"],
                prefix + "_project_scm_branch": defs["projects"][jt["project"]].get("scm_branch", ""),
            }
        )
    env = dict(base_env or {})
    args = []
    injected = {}
    for cname in jt.get("credentials", []):
        cred = defs["credentials"][cname]
        ctype = cred["credential_type"]
        if ctype == "Machine":
            inject_machine(cred, args, private_data_dir)
        else:
            injected.update(inject_credential(defs["credential_types"][ctype], cred, env, args, private_data_dir))
    with open(os.path.join(private_data_dir, "env", "extravars"), "w") as handle:
        json.dump(extravars, handle)
    with open(os.path.join(private_data_dir, "env", "envvars"), "w") as handle:
        json.dump(env, handle)
    with open(os.path.join(private_data_dir, "env", "cmdline"), "w") as handle:
        handle.write(" ".join(shlex.quote(a) for a in args))
    return {"extra_vars": injected, "env": env, "args": args}
