"""Render the role's PrometheusRule with its default thresholds, outside Ansible.

The template uses plain Jinja2 only (no Ansible filters), rendered with the options
Ansible's template module uses (trim_blocks), so what promtool and the CRD schema test
see is what the role deploys with default variables.

  python render_rules.py prometheusrule  > prometheusrule.yaml   # the Kubernetes object
  python render_rules.py rules           > rules.yml             # spec only, for promtool
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jinja2
import yaml

ROLE = Path(__file__).resolve().parents[1]


def defaults(overrides: dict | None = None) -> dict:
    values = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    values.update(overrides or {})
    return values


def render_prometheus_rule(overrides: dict | None = None) -> dict:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(ROLE / "templates")), undefined=jinja2.StrictUndefined, trim_blocks=True
    )
    text = environment.get_template("prometheusrule.yaml.j2").render(**defaults(overrides))
    return yaml.safe_load(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["prometheusrule", "rules"])
    what = parser.parse_args().what
    document = render_prometheus_rule()
    if what == "rules":
        document = document["spec"]
    yaml.safe_dump(document, sys.stdout, sort_keys=False, width=200)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
