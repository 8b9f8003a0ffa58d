# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """Options shared by the modules that write certificate and key files.

    Spec: module_utils/args_file_output.py, FILE_OUTPUT_SPEC.
    """

    DOCUMENTATION = r"""
options:
  backup:
    description:
      - Keep a timestamped copy (C(<path>.<UTC timestamp>~)) of every file that is replaced or removed.
      - Copies of private keys are written with mode C(0600), like the keys.
      - The paths of the copies are returned in RV(backup_files).
    type: bool
    default: false
  mode:
    description:
      - File mode of the certificate and chain files, as an octal string such as V('0644').
      - Private key files are always written with mode C(0600) unless O(key_mode) says otherwise.
    type: raw
    default: '0644'
  key_mode:
    description:
      - File mode of private key files, as an octal string.
    type: raw
    default: '0600'
notes:
  - Every file is written atomically - a temporary file in the same directory, created with
    its final mode, flushed to disk, then renamed over the target - so a reader never sees a
    half-written certificate or a key with a looser mode. A file whose content is already
    right is not touched.
"""
