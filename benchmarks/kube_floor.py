# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the floor scripts of the Kubernetes benchmarks (mesh_policy/floor.py,
sync_secrets/floor.py) share, so that both floors are measured the same way: one
`kubernetes` client whose connection pool serves THREADS threads, and every phase timed
on a pool of that many threads.
"""

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

from kubernetes import config

THREADS = 8


def connect(options):
    """Parses the floor's options (every one required) and opens the one client of the run."""
    parser = argparse.ArgumentParser()
    for option in options:
        parser.add_argument(option, required=True)
    args = parser.parse_args()
    api_client = config.new_client_from_config(config_file=args.kubeconfig)
    api_client.configuration.connection_pool_maxsize = THREADS
    return args, api_client


def timed_phases(phases, clean_up):
    """Seconds of each (label, function, items) phase, in order, each item a call on the pool.

    clean_up, (function, items), runs after the last phase and is not timed.
    """
    figures = {}
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for label, function, items in phases:
            started = time.perf_counter()
            list(pool.map(function, items))
            figures[label] = round(time.perf_counter() - started, 3)
        clean_up_function, clean_up_items = clean_up
        list(pool.map(clean_up_function, clean_up_items))
    return figures
