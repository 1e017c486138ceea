#!/usr/bin/env bash
# Run each libFuzzer target for a bounded time, seeded from the ONNX test data. The random seed
# is fixed (IFD_FUZZ_SEED, default 1) so that CI repeats the same search; run with other seeds
# and longer times by hand to look further.
#   tests/run_fuzz.sh BUILD_DIR SECONDS      (SECONDS scales the number of runs)
set -u
b=$1; secs=${2:-60}
onnx=${IFD_ONNX_TESTS:-$(dirname "$0")/../../shared/onnx-tests}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir -p "$work/model" "$work/tensor" "$work/npy" "$work/kserve" "$work/http"
i=0
for f in "$onnx"/node/test_{string,strnorm,regex,equal_string,ai_onnx_ml_label,conv,if,loop,add,gemm,lstm,resize,scan}*/model.onnx "$onnx"/simple/*/model.onnx; do
  [ -f "$f" ] && cp "$f" "$work/model/seed_$i.onnx" && i=$((i+1))
  [ $i -ge 200 ] && break
done
i=0
for f in "$onnx"/node/test_{string,strnorm,cast,add,conv}*/test_data_set_0/*.pb; do
  [ -f "$f" ] && cp "$f" "$work/tensor/seed_$i.pb" && i=$((i+1))
  [ $i -ge 200 ] && break
done
/usr/bin/python3 - "$work/npy" <<'PY' 2>/dev/null || printf '\x93NUMPY\x01\x00v\x00{'"'"'descr'"'"': '"'"'<f4'"'"', '"'"'fortran_order'"'"': False, '"'"'shape'"'"': (2,), }\n' > "$work/npy/seed"
import sys, numpy as np
np.save(sys.argv[1] + "/a.npy", np.arange(6, dtype=np.float32).reshape(2, 3))
np.save(sys.argv[1] + "/b.npy", np.array([1, 2], dtype=np.int64))
PY
# KServe v2 infer request bodies
k=$work/kserve
printf '%s' '{"id":"a","inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[[1,2,3],[4,5.5,"NaN"]]}]}' >"$k/fp32"
printf '%s' '{"inputs":[{"name":"b","shape":[2],"datatype":"BOOL","data":[true,false]},{"name":"i","shape":[3],"datatype":"INT64","data":[1,-2,9223372036854775807]}],"outputs":[{"name":"y"}]}' >"$k/mixed"
printf '%s' '{"inputs":[{"name":"h","shape":[1,2],"datatype":"FP16","data":[0.5,-65504]},{"name":"u","shape":[1],"datatype":"UINT8","data":[255]},{"name":"bf","shape":[1],"datatype":"BF16","data":["-Infinity"]}],"parameters":{"p":1}}' >"$k/half"
printf '%s' '{"inputs":[{"name":"x","shape":[0,4294967296,4294967296],"datatype":"FP64","data":[]}]}' >"$k/overflow"
printf '%s' '{"inputs":[{"name":"x","shape":[2,2],"datatype":"INT8","data":[[1],[2,3]]}]}' >"$k/ragged"
printf '%s' '{"inputs":[{"data":[1.1176220178604126,-1.3871248960494995,0.123457,16777217,3.4028235e38],"shape":[5],"datatype":"FP32","na\u006de":"x"}]}' >"$k/fast"
printf '%s' '{"inputs":[{"name":"s","shape":[2,2],"datatype":"BYTES","data":[["a","\u00e9\ud83d\ude00"],["","x\u0000y\n"]]}]}' >"$k/bytes"
printf '{"inputs":[{"name":"s","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":11}}]}\x02\x00\x00\x00ab\x01\x00\x00\x00c\x0b' >"$k/bytes_bin"
# HTTP/1.1 requests (heads, bodies, pipelining)
h=$work/http
printf 'GET /v2/health/ready HTTP/1.1\r\nHost: localhost:8000\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n' >"$h/get"
printf 'POST /v2/models/m/infer HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{"inputs":[{}]}\n' >"$h/post"
printf 'POST /v2/models/m/infer HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\n{"inp\r\nA\r\nuts":[{}]}\r\n0\r\nX-Checksum: abc\r\n\r\n' >"$h/chunked"
printf 'GET /v2 HTTP/1.1\r\nHost: h\r\n\r\nPOST /v2/models/m/infer?x=1 HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}' >"$h/pipelined"
printf 'GET http://localhost:8000/v2/models/m?verbose=1 HTTP/1.1\r\nHost: localhost:8000\r\n\r\n' >"$h/absolute"
printf 'POST /v2/models/m/infer HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}' >"$h/expect"
printf '\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\nX-Obs: caf\xc3\xa9\r\n\r\n' >"$h/http10"
printf 'POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n1\r\nb\r\n0\r\n\r\nGET /y HTTP/1.1\r\n\r\n' >"$h/chunked_pipelined"
# a crashing input is kept here (copy it to tests/fuzz_regressions/<target>/ with the fix)
artifacts=${IFD_FUZZ_ARTIFACTS:-build/fuzz-artifacts}
mkdir -p "$artifacts"
# the time bound caps CI even if a slow machine or a slow input makes the runs take longer
max_secs=$((secs * 2))
pass=0; fail=0
# A run is a fixed number of inputs from a fixed seed, so CI repeats exactly the search that
# was run before the submission (a time bound would search further on a faster machine);
# max_total_time is only a safety net.
run() { # target corpus runs
  local log="$work/$1.log"
  # inputs that once crashed a target run first, every time
  local reg=$(dirname "$0")/fuzz_regressions/$1
  if [ -d "$reg" ] && ! "$b/fuzz/fuzz_$1" "$reg"/* >"$log" 2>&1; then
    echo "FAIL fuzz_$1: a saved regression input fails again:"; grep -E 'ERROR|SUMMARY' "$log" | head
    fail=$((fail+1)); return
  fi
  if "$b/fuzz/fuzz_$1" -runs="$3" -max_total_time="$max_secs" -seed="${IFD_FUZZ_SEED:-1}" -artifact_prefix="$artifacts/" -rss_limit_mb=4096 -max_len=1048576 -timeout=30 \
       "$work/$2" >"$log" 2>&1; then
    echo "PASS fuzz_$1: $(grep -E '^Done|#[0-9]+.*DONE' "$log" | tail -1)"; pass=$((pass+1))
  else
    echo "FAIL fuzz_$1:"; grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head; fail=$((fail+1))
  fi
}
# about `secs` seconds for the loader and a third of that for the others, under ASan here
run model_load model $((secs * 5000))
run tensorproto tensor $((secs * 60000))
run npy npy $((secs * 100000))
run kserve_json kserve $((secs * 30000))
run http1 http $((secs * 30000))
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
