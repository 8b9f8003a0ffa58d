# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes' own rules for names, labels and annotations, checked before a request.

A name the API server would refuse is refused here, naming the option and what a valid
value looks like, so nothing is read or written with it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_errors import KubeError

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")

# The two DNS-1123 forms: (pattern, maximum length, what the value is called, what it may hold).
_SUBDOMAIN_RULE = (_DNS_SUBDOMAIN, 253, "Kubernetes name", "lower-case letters, digits, '-' and '.'")
_LABEL_RULE = (_DNS_LABEL, 63, "namespace name", "lower-case letters, digits and '-'")


def _check_dns_1123(value, field, rule):
    pattern, limit, called, characters = rule
    if not isinstance(value, str) or not value or len(value) > limit or not pattern.match(value):
        raise KubeError(
            "%s %r is not a valid %s; use %s, starting and ending with a letter or digit (at most %d)." % (field, value, called, characters, limit),
            field=field,
        )


def validate_object_name(value, field):
    """Kubernetes object names are DNS-1123 subdomains."""
    _check_dns_1123(value, field, _SUBDOMAIN_RULE)


def validate_namespace_name(value, field):
    """Namespace names are DNS-1123 labels."""
    _check_dns_1123(value, field, _LABEL_RULE)


def _validate_qualified_key(key, field):
    prefix, _slash, name = key.rpartition("/")
    if (prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix))) or not name or len(name) > 63 or not _LABEL_NAME.match(name):
        raise KubeError(
            "%s key %r is not a valid key; use an optional DNS prefix and '/', then at most 63 letters, digits, '-', '_' or '.'." % (field, key), field=field
        )


def validate_labels(labels, field="labels"):
    for key, value in (labels or {}).items():
        _validate_qualified_key(key, field)
        text = "" if value is None else str(value)
        if len(text) > 63 or (text and not _LABEL_NAME.match(text)):
            raise KubeError(
                "%s.%s value %r is not a valid label value; use at most 63 "
                "letters, digits, '-', '_' or '.', starting and ending with a letter "
                "or digit." % (field, key, text),
                field=field,
            )


def validate_annotations(annotations, field="annotations"):
    for key, value in (annotations or {}).items():
        _validate_qualified_key(key, field)
        if value is None:
            raise KubeError("%s.%s has no value; give it a string or remove it." % (field, key), field=field)


def string_map(values):
    """Labels and annotations as the API stores them: strings."""
    return dict((str(k), str(v)) for k, v in (values or {}).items())
