"""Pipelines: a service's git remote, webhooks, the pipeline file, and the runs that test,
build, push and deploy a commit (see DESIGN.md's room table)."""
