"""Baepo (배포): a self-hosted App Runner + ECR + CI/CD.

One package, one folder per room (see the project's DESIGN map):
registry, storage, auth, store, runtime, router, control, autoscale, pipelines, api, cli, console.
`server.py` is the composition root; nothing imports it.
"""

__version__ = "0.1.0"
