#!/usr/bin/env python3
"""Run the benchmark: python3 benchmarks/run.py [--targets 1,5,10,20] [--repeat 3] [--out DIR],
or the distribution benchmark: python3 benchmarks/run.py distribution [--quick] [--rate 400mbit],
or several registries on one store: python3 benchmarks/run.py replicas [--instances 1,2,3],
or each host its own images (kolla-ansible's sets): python3 benchmarks/run.py kolla-sets.

With any Python it first makes benchmarks/.venv (the tool with its bench extra:
ansible-core, pyinfra, matplotlib) and runs itself there. See benchmarks/README.md.
"""

import os
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from benchmarks import venv  # needs the project on sys.path first

if Path(sys.prefix).resolve() != venv.VENV.resolve():
    python = str(venv.ensure())
    os.execv(python, [python, __file__, *sys.argv[1:]])

# only inside the bench venv; one user of the lab at a time (a test session waits, and is waited for)
import compileall
from contextlib import nullcontext

from tests.lab.lock import lab_lock

# Asking for help uses no lab: it need not wait for one.
# fab timed as an operator runs it, from bytecode: pip compiles what it installs, but this venv's editable
# install leaves fabfile to the first run, and under PYTHONDONTWRITEBYTECODE every run compiled every
# module again (0.13 s of each fab run).
compileall.compile_dir(PROJECT / "fabfile", quiet=1)

with nullcontext() if {"-h", "--help"} & set(sys.argv[1:]) else lab_lock():
    if sys.argv[1:2] == ["distribution"]:
        from benchmarks.distribution import main

        sys.exit(main(sys.argv[2:]))
    if sys.argv[1:2] == ["replicas"]:
        from benchmarks.replicas_bench import main

        sys.exit(main(sys.argv[2:]))
    if sys.argv[1:2] == ["kolla-sets"]:
        from benchmarks.kolla_bench import main

        sys.exit(main(sys.argv[2:]))
    from benchmarks.cli import main

    sys.exit(main())
