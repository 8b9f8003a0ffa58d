# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The argument spec that goes with the doc fragment file_output.

Every module that extends zerotrust.mtls.file_output (mtls_ca, mtls_cert) adds
FILE_OUTPUT_SPEC to its argument spec, so the options and their documentation are
declared once, side by side.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# doc_fragments/file_output.py
FILE_OUTPUT_SPEC = dict(
    backup=dict(type="bool", default=False),
    mode=dict(type="raw", default="0644"),
    key_mode=dict(type="raw", default="0600", no_log=False),
)
