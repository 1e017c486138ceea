#!/usr/bin/env bash
# Checks of deploy/: promtool check config / check rules / test rules, the Grafana dashboard
# (valid JSON, schemaVersion >= 36, Prometheus data source as a variable, every expression names
# only inferd's metrics), and, with a build of tests/test_metrics, the exposition text itself:
# promtool check metrics on a rendered page, then a real Prometheus server that scrapes it, is
# queried back over its HTTP API, and fires an alert from deploy/rules on it.
#   tests/test_deploy.sh [BUILD_DIR]     BUILD_DIR: where tests/test_metrics is (default build)
# Prints PASS/FAIL lines and "N passed, M failed"; exit 3 when promtool is not installed
# (Debian: apt-get install prometheus).
set -u
cd "$(dirname "$0")/.."
root=$PWD
build=${1:-${IFD_BUILD_DIR:-$root/build}}
python=/usr/bin/python3
[ -x "$python" ] || python=python3

if ! command -v promtool >/dev/null 2>&1; then
  echo "SKIP deploy: promtool not found (install Debian's prometheus package: apt-get install -y prometheus)"
  exit 3
fi

passed=0; failed=0
pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
# check NAME COMMAND...: PASS when the command succeeds, else FAIL with its last lines
check() {
  local name=$1; shift
  local out
  if out=$("$@" 2>&1); then pass "$name"; else fail "$name: $(echo "$out" | tail -15 | tr '\n' ' ')"; fi
}

tmp=$(mktemp -d /tmp/inferd-deploy.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

check "promtool check config deploy/prometheus.yml" promtool check config deploy/prometheus.yml
check "promtool check rules deploy/rules/inferd.rules.yml" promtool check rules deploy/rules/inferd.rules.yml
check "promtool test rules deploy/rules/inferd.rules.test.yml" \
  promtool test rules deploy/rules/inferd.rules.test.yml

# The rule tests must cover every alert, each with a case that fires and one that does not.
check "rule tests: every alert has a firing and a non-firing case" "$python" - <<'EOF'
import re, sys
rules = open("deploy/rules/inferd.rules.yml").read()
tests = open("deploy/rules/inferd.rules.test.yml").read()
alerts = re.findall(r"^\s*- alert:\s*(\S+)", rules, re.M)
if len(alerts) < 5:
    sys.exit(f"only {len(alerts)} alerts in the rules file")
bad = []
for a in alerts:
    # each alert_rule_test entry: alertname then exp_alerts ([] or a list)
    entries = re.findall(r"alertname:\s*%s\s*\n\s*exp_alerts:(.*)" % re.escape(a), tests)
    fires = any(e.strip() == "" for e in entries)      # a list follows on the next lines
    quiet = any(e.strip() == "[]" for e in entries)
    if not (fires and quiet):
        bad.append(f"{a} (fires: {fires}, quiet: {quiet})")
if bad:
    sys.exit("alerts without both cases: " + ", ".join(bad))
EOF

# Metric names inferd exports (docs/METRICS.md); histograms also as _bucket/_sum/_count.
metric_list="$tmp/metrics.txt"
cat >"$metric_list" <<'EOF'
inferd_requests_total
inferd_inferences_total
inferd_executions_total
inferd_request_duration_seconds histogram
inferd_queue_duration_seconds histogram
inferd_input_duration_seconds histogram
inferd_compute_duration_seconds histogram
inferd_output_duration_seconds histogram
inferd_batch_size histogram
inferd_pending_requests
inferd_model_loaded
inferd_model_load_duration_seconds
inferd_model_load_failures_total
inferd_drift_score
inferd_drift_threshold
inferd_http_requests_total
inferd_http_open_connections
process_cpu_seconds_total
process_resident_memory_bytes
process_start_time_seconds
process_open_fds
inferd_allocator_bytes
inferd_uptime_seconds
inferd_build_info
EOF

# Rendered page from the C library (for the cross-checks below), when the test is built.
page=""
if [ -x "$build/tests/test_metrics" ]; then
  mkdir -p "$tmp/www"
  if "$build/tests/test_metrics" --dump "$tmp/www/metrics" && [ -s "$tmp/www/metrics" ]; then
    page="$tmp/www/metrics"
    pass "test_metrics --dump wrote a /metrics page"
  else
    fail "test_metrics --dump did not write a page"
  fi
else
  echo "note: $build/tests/test_metrics not built: skipping the checks of rendered text"
fi

check "grafana dashboard: JSON, schema, data source variable, panels, metric names" \
  "$python" - deploy/grafana/inferd.json "$metric_list" "$page" deploy/rules/inferd.rules.yml <<'EOF'
import json, re, sys
path, list_path, page, rules_path = sys.argv[1:5]
errors = []
allowed = set()
for line in open(list_path):
    parts = line.split()
    if not parts:
        continue
    allowed.add(parts[0])
    if len(parts) > 1 and parts[1] == "histogram":
        allowed.update(parts[0] + s for s in ("_bucket", "_sum", "_count"))
rendered = None
if page:
    rendered = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", open(page).read(), re.M))
try:
    d = json.load(open(path))
except ValueError as e:
    sys.exit(f"{path}: not JSON: {e}")
if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 36:
    errors.append(f"schemaVersion {d.get('schemaVersion')} < 36")
for k in ("uid", "title", "panels", "templating"):
    if k not in d:
        errors.append(f"no '{k}'")
variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
ds = [v for v in variables.values() if v.get("type") == "datasource" and v.get("query") == "prometheus"]
if not ds:
    errors.append("no Prometheus data source variable in templating")
ds_name = ds[0]["name"] if ds else "datasource"
name_re = re.compile(r"\b((?:inferd|process)_[a-zA-Z0-9_:]*)")

def check_expr(where, expr):
    names = name_re.findall(expr)
    if not names:
        errors.append(f"{where}: expression names no inferd metric: {expr}")
    for n in names:
        if n not in allowed:
            errors.append(f"{where}: unknown metric {n}")
        elif rendered is not None and n not in rendered and not n.endswith(("_bucket", "_sum", "_count")):
            errors.append(f"{where}: {n} is not in the page the C library renders")
    return names

used = set()
ids = set()
def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))
n_panels = 0
for p in walk(d.get("panels", [])):
    pid = p.get("id")
    if pid in ids:
        errors.append(f"panel id {pid} used twice")
    ids.add(pid)
    g = p.get("gridPos", {})
    if not all(k in g for k in ("h", "w", "x", "y")) or g.get("x", 0) + g.get("w", 0) > 24:
        errors.append(f"panel {pid} '{p.get('title')}': bad gridPos {g}")
    if p.get("type") == "row":
        continue
    n_panels += 1
    title = p.get("title", "")
    if not p.get("targets"):
        errors.append(f"panel '{title}': no targets")
    if (p.get("datasource") or {}).get("uid") != "${%s}" % ds_name:
        errors.append(f"panel '{title}': data source is not the ${ds_name} variable")
    for t in p.get("targets", []):
        if (t.get("datasource") or {}).get("uid") not in (None, "${%s}" % ds_name):
            errors.append(f"panel '{title}': a target uses another data source")
        used.update(check_expr(f"panel '{title}'", t.get("expr", "")))
for v in variables.values():
    if v.get("type") == "query":
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else q or ""
        check_expr(f"variable '{v.get('name')}'", q)
# the subjects the dashboard must show
for need in ("inferd_requests_total", "inferd_request_duration_seconds_bucket",
             "inferd_queue_duration_seconds_bucket", "inferd_batch_size_sum",
             "inferd_pending_requests", "inferd_model_loaded", "process_cpu_seconds_total",
             "process_resident_memory_bytes", "inferd_drift_score", "inferd_inferences_total"):
    if need not in used:
        errors.append(f"no panel shows {need}")
if not any('outcome' in t.get("expr", "") for p in walk(d.get("panels", [])) for t in p.get("targets", [])):
    errors.append("no panel splits errors by outcome")
if n_panels < 10:
    errors.append(f"only {n_panels} panels")
# the alert rules name only inferd's metrics too
lines = open(rules_path).read().split("\n")
for i, line in enumerate(lines):
    m = re.match(r"^(\s*)expr:\s*(.*)$", line)
    if not m:
        continue
    indent, rest = len(m.group(1)), m.group(2).strip()
    expr = rest if rest not in ("|", ">", "|-", ">-") else ""
    for more in lines[i + 1:]:  # a block scalar: the lines indented deeper than "expr:"
        if expr and rest not in ("|", ">", "|-", ">-"):
            break
        if more.strip() and len(more) - len(more.lstrip()) <= indent:
            break
        expr += more.strip() + " "
    check_expr(f"rule at line {i + 1}", expr)
if errors:
    sys.exit("\n".join(errors))
print(f"{n_panels} panels, {len(used)} metrics used")
EOF

check "grafana provisioning: apiVersion 1, a prometheus data source, a file dashboard provider" \
  "$python" - <<'EOF'
import sys
import yaml
ds = yaml.safe_load(open("deploy/grafana/provisioning/datasources/prometheus.yml"))
db = yaml.safe_load(open("deploy/grafana/provisioning/dashboards/inferd.yml"))
if ds.get("apiVersion") != 1 or db.get("apiVersion") != 1:
    sys.exit("apiVersion is not 1")
if not any(d.get("type") == "prometheus" and d.get("url") for d in ds.get("datasources", [])):
    sys.exit("no prometheus data source with a url")
if not any(p.get("type") == "file" and p.get("options", {}).get("path") for p in db.get("providers", [])):
    sys.exit("no file provider with a path")
EOF

if [ -n "$page" ]; then
  check "promtool check metrics on the rendered page" sh -c "promtool check metrics < '$page'"

  # A real Prometheus scrapes the page (served by a throwaway HTTP server), evaluates
  # deploy/rules on it, and answers queries over its HTTP API.
  if command -v prometheus >/dev/null 2>&1; then
    ports=$("$python" -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))')
    web_port=${ports% *}; prom_port=${ports#* }
    "$python" -m http.server "$web_port" --bind 127.0.0.1 --directory "$tmp/www" >"$tmp/http.log" 2>&1 &
    pids+=($!)
    cp deploy/rules/inferd.rules.yml "$tmp/rules.yml"
    cat >"$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ['$tmp/rules.yml']
scrape_configs:
  - job_name: inferd
    static_configs:
      - targets: ['127.0.0.1:$web_port']
EOF
    prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
      --web.listen-address="127.0.0.1:$prom_port" >"$tmp/prometheus.log" 2>&1 &
    pids+=($!)
    query() { # PromQL -> JSON result on stdout
      "$python" - "$prom_port" "$1" <<'EOF'
import json, sys, urllib.parse, urllib.request
port, q = sys.argv[1], sys.argv[2]
url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
try:
    r = json.load(urllib.request.urlopen(url, timeout=2))
except Exception as e:
    print("[]"); sys.exit(0)
print(json.dumps(r.get("data", {}).get("result", [])))
EOF
    }
    value_of() { # PromQL -> first sample's value, or empty
      query "$1" | "$python" -c 'import json,sys; r=json.load(sys.stdin); print(r[0]["value"][1] if r else "")'
    }
    up=""; for _ in $(seq 1 60); do up=$(value_of 'up{job="inferd"}'); [ "$up" = 1 ] && break; sleep 0.5; done
    if [ "$up" = 1 ]; then
      pass "prometheus scraped the rendered page (up=1)"
      v=$(value_of 'inferd_requests_total{model="digits",version="1",outcome="success"}')
      [ "$v" = 1 ] && pass "prometheus reads inferd_requests_total{outcome=\"success\"} = 1" \
        || fail "prometheus query of inferd_requests_total gave '$v', want 1"
      v=$(value_of 'inferd_request_duration_seconds_bucket{model="digits",le="0.0025"}')
      w=$(value_of 'inferd_request_duration_seconds_bucket{model="digits",le="0.001"}')
      [ "$v" = 1 ] && [ "$w" = 0 ] && pass "prometheus reads the histogram buckets (le=0.001: 0, le=0.0025: 1)" \
        || fail "histogram buckets through prometheus: le=0.001 '$w', le=0.0025 '$v'"
      v=$(value_of 'inferd_drift_score > ignoring(tensor) group_left inferd_drift_threshold')
      [ -z "$v" ] && pass "drift comparison with the real labels: 0.01 is not over 0.2" \
        || fail "drift comparison matched with value '$v'"
      a=""; for _ in $(seq 1 40); do
        a=$(query 'ALERTS{alertname="InferdModelLoadFailed",alertstate="firing",model="broken"}')
        [ "$a" != "[]" ] && break; sleep 0.5
      done
      [ "$a" != "[]" ] && pass "prometheus fires InferdModelLoadFailed for the page's load failure" \
        || fail "InferdModelLoadFailed did not fire in prometheus: $(tail -3 "$tmp/prometheus.log")"
    else
      fail "prometheus did not scrape the page: $(grep -iE 'err|warn' "$tmp/prometheus.log" | tail -3)"
    fi
  else
    echo "note: no prometheus binary: skipping the live scrape"
  fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
