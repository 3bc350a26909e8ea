#!/usr/bin/env python3
"""Checks the collector configuration in docs/observability.md without a collector binary (Debian has none):
the YAML parses, every pipeline names receivers, processors and exporters that are declared, every declared one is
used, the OTLP receiver listens on the ports Gatehouse's exporter defaults to (4317 gRPC, 4318 HTTP), and each
pipeline covers a signal Gatehouse exports (traces, metrics, logs). Exit status 0 when all hold.
Usage: python3 scripts/check-collector-yaml.py [docs/observability.md]"""
import re
import sys

import yaml

path = sys.argv[1] if len(sys.argv) > 1 else "docs/observability.md"
text = open(path, encoding="utf-8").read()
blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
if not blocks:
    sys.exit(f"{path}: no yaml block")
config = yaml.safe_load(blocks[0])
problems = []
declared = {kind: set((config.get(kind) or {}).keys()) for kind in ("receivers", "processors", "exporters")}
used = {kind: set() for kind in declared}
pipelines = (config.get("service") or {}).get("pipelines") or {}
for name, pipeline in pipelines.items():
    for kind in declared:
        for component in pipeline.get(kind, []):
            used[kind].add(component)
            if component not in declared[kind]:
                problems.append(f"pipeline {name}: {kind[:-1]} {component} is not declared")
    if not pipeline.get("receivers") or not pipeline.get("exporters"):
        problems.append(f"pipeline {name}: needs a receiver and an exporter")
for kind in declared:
    for component in declared[kind] - used[kind]:
        problems.append(f"{kind[:-1]} {component} is declared but unused")
signals = {name.split("/")[0] for name in pipelines}
for signal in ("traces", "metrics", "logs"):
    if signal not in signals:
        problems.append(f"no {signal} pipeline (Gatehouse exports {signal})")
protocols = ((config.get("receivers") or {}).get("otlp") or {}).get("protocols") or {}
for protocol, port in (("grpc", "4317"), ("http", "4318")):
    endpoint = (protocols.get(protocol) or {}).get("endpoint", "")
    if not endpoint.endswith(":" + port):
        problems.append(f"otlp {protocol} receiver is not on :{port} ({endpoint!r})")
for problem in problems:
    print(problem)
print(f"{path}: {len(pipelines)} pipelines, {sum(map(len, declared.values()))} components, {len(problems)} problems")
sys.exit(1 if problems else 0)
