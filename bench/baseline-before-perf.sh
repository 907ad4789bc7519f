#!/usr/bin/env bash
# Builds the "forktrace before" column of BENCHMARKS.md: the current src/ with the three
# performance changes taken out (trace-ordered serialization, trace-only serializer import,
# one export at a time), into .bench-out/baseline-before-perf/dist. Then:
#   npm run bench -- --baseline .bench-out/baseline-before-perf/dist
# It fails loudly if src/worker/exporter.ts no longer has the lines it edits.
set -euo pipefail
cd "$(dirname "$0")/.."
D=.bench-out/baseline-before-perf
rm -rf $D; mkdir -p $D
git archive HEAD src tsconfig.json package.json | tar -x -C $D
ln -s "$PWD/node_modules" $D/node_modules
python3 - <<'PY'
p='.bench-out/baseline-before-perf/src/worker/exporter.ts'
s=open(p).read()
s=s.replace("import { TraceExporterMetricsHelper } from '@opentelemetry/otlp-transformer/build/src/trace';\nimport { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer/build/src/trace/protobuf';","import { ProtobufTraceSerializer, TraceExporterMetricsHelper } from '@opentelemetry/otlp-transformer';")
assert "from '@opentelemetry/otlp-transformer';" in s
assert s.count("        TraceOrderedSerializer,\n")==1
s=s.replace("        TraceOrderedSerializer,\n","        ProtobufTraceSerializer,\n")
assert s.count("  oneExportAtATime(processor);\n")==1
s=s.replace("  oneExportAtATime(processor);\n","")
open(p,'w').write(s)
PY
node node_modules/typescript/bin/tsc -p $D/tsconfig.json
echo "built $D/dist"
