#!/usr/bin/env bash
# Usage: cluster/submit.sh GRID [HYDRA_OVERRIDES...]
#
# Runs `python -m sweep +grid=GRID [overrides]` as a Ray job on an existing Ray cluster and
# follows its logs; exits with the job's status (0 SUCCEEDED, 1 FAILED or STOPPED, 2 usage or
# configuration error, 3 a precondition failed or the submission was refused: nothing was
# submitted).
#
# Run it from the repository root: the current directory is uploaded as the job's working
# directory (without .venv, .git, mlruns.db, mlartifacts, outputs, caches).
#
#   RAY_ADDRESS          the cluster's dashboard URL, e.g. http://127.0.0.1:8265 (required)
#   MLFLOW_TRACKING_URI  where the job records results, e.g. http://127.0.0.1:5000 (required;
#                        forwarded into the job's environment). Checked here before submitting
#                        and again on the cluster before the sweep starts
#                        (cluster/check_tracking.py): an unreachable server fails in seconds
#                        with a message naming the URI.
#   RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH / ~/.ray/auth_token
#                        Ray's authentication token, looked up in this order (Ray's own order).
#                        With one present, RAY_AUTH_MODE=token is set for the submission.
#   SWEEP_PYTHON         interpreter that runs the sweep on the cluster (default: python)
#   SUBMIT_SKIP_CHECK=1  skip the MLflow reachability check (when the URI is reachable from
#                        the cluster but not from this machine); the job then checks it itself.
#   SUBMIT_ID            submission id (default: sweep-GRID-<time>-<random>)
#   SUBMIT_AGENT_TIMEOUT seconds to keep submitting while the head's Ray job agent is not up
#                        yet (the dashboard answers "No available agent to submit job" on a
#                        busy or just-started head; default 120)
#   SUBMIT_ENTRYPOINT_RESOURCES  JSON for `--entrypoint-resources`, to pin the driver
#
# Example:
#   export RAY_ADDRESS=http://127.0.0.1:8265 MLFLOW_TRACKING_URI=http://127.0.0.1:5000
#   cluster/submit.sh smoke train.steps=500 'seed=[0,1,2]'
set -euo pipefail

die() {
	local code=$1
	shift
	printf 'cluster/submit.sh: %s\n' "$*" >&2
	exit "$code"
}

if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
	[[ $# -lt 1 ]] && exit 2
	exit 0
fi
GRID=$1
shift
[[ $GRID =~ ^[A-Za-z0-9_.-]+$ ]] || die 2 "GRID must be a grid name such as smoke or deep_relu (got '$GRID')."

command -v ray >/dev/null 2>&1 || die 3 "the 'ray' command is not on PATH (pip install 'ray[default]', or activate the project's .venv)."
command -v python3 >/dev/null 2>&1 || die 3 "python3 is not on PATH."
[[ -f sweep/__main__.py || -f sweep/__init__.py ]] ||
	die 2 "run this from the repository root (no sweep/ package in $PWD): the current directory is uploaded as the job's working directory."

AGENT_TIMEOUT=${SUBMIT_AGENT_TIMEOUT:-120}
[[ $AGENT_TIMEOUT =~ ^[0-9]+$ ]] ||
	die 2 "SUBMIT_AGENT_TIMEOUT must be a whole number of seconds (got '$AGENT_TIMEOUT')."

# ---------------------------------------------------------------- Ray address
[[ -n ${RAY_ADDRESS:-} ]] ||
	die 2 "RAY_ADDRESS is not set: export RAY_ADDRESS=http://HEAD:8265 (the Ray dashboard URL of the cluster)."
ADDRESS=$RAY_ADDRESS
case $ADDRESS in
http://* | https://*) ;;
ray://*) die 2 "RAY_ADDRESS=$ADDRESS is a Ray Client address; job submission needs the dashboard URL, e.g. http://HEAD:8265." ;;
auto | local) die 2 "RAY_ADDRESS=$ADDRESS: job submission needs the dashboard URL, e.g. http://HEAD:8265." ;;
*) ADDRESS="http://$ADDRESS" ;;
esac
ADDRESS=${ADDRESS%/}

# ---------------------------------------------------------------- Ray token authentication
# Ray (>= 2.52) enforces a token when the cluster runs with RAY_AUTH_MODE=token; the client adds
# the token to its requests only when RAY_AUTH_MODE=token is set in its own environment.
TOKEN_SOURCE=""
if [[ -n ${RAY_AUTH_TOKEN:-} ]]; then
	TOKEN_SOURCE="RAY_AUTH_TOKEN"
elif [[ -n ${RAY_AUTH_TOKEN_PATH:-} ]]; then
	[[ -r $RAY_AUTH_TOKEN_PATH && -s $RAY_AUTH_TOKEN_PATH ]] ||
		die 3 "RAY_AUTH_TOKEN_PATH=$RAY_AUTH_TOKEN_PATH is not a readable, non-empty file (Ray would abort); fix the path or unset it."
	TOKEN_SOURCE="RAY_AUTH_TOKEN_PATH=$RAY_AUTH_TOKEN_PATH"
elif [[ -s $HOME/.ray/auth_token ]]; then
	TOKEN_SOURCE="$HOME/.ray/auth_token"
fi
if [[ -n $TOKEN_SOURCE && -z ${RAY_AUTH_MODE:-} ]]; then
	export RAY_AUTH_MODE=token
fi

# Ask the dashboard for its version: tells apart "not reachable", "token needed" and "token wrong".
probe=$(
	ADDRESS=$ADDRESS TOKEN_SOURCE=$TOKEN_SOURCE python3 - <<'EOF'
import os, pathlib, urllib.error, urllib.request

headers = {}
src = os.environ["TOKEN_SOURCE"]
if src and os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
    if src == "RAY_AUTH_TOKEN":
        token = os.environ["RAY_AUTH_TOKEN"]
    else:
        token = pathlib.Path(src.split("=", 1)[-1]).read_text()
    headers["Authorization"] = "Bearer " + token.strip()
req = urllib.request.Request(os.environ["ADDRESS"] + "/api/version", headers=headers)
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception as e:
    print("unreachable", type(e).__name__, e)
EOF
)
case $probe in
200) ;;
401)
	[[ -n $TOKEN_SOURCE ]] &&
		die 3 "the Ray cluster at $ADDRESS requires an authentication token; one is in $TOKEN_SOURCE but RAY_AUTH_MODE=${RAY_AUTH_MODE:-} keeps it from being sent: unset RAY_AUTH_MODE (or set it to token)."
	die 3 "the Ray cluster at $ADDRESS requires an authentication token and none was found: set RAY_AUTH_TOKEN, or RAY_AUTH_TOKEN_PATH to a file holding it, or put it in ~/.ray/auth_token (print the cluster's token on its head node with \`ray get-auth-token\`)."
	;;
403)
	die 3 "the Ray cluster at $ADDRESS rejected the token from $TOKEN_SOURCE (${RAY_AUTH_MODE:+RAY_AUTH_MODE=$RAY_AUTH_MODE}); use the cluster's token (\`ray get-auth-token\` on its head node)."
	;;
unreachable*)
	die 3 "cannot reach the Ray dashboard at $ADDRESS (${probe#unreachable }); check RAY_ADDRESS and that the cluster is up (the head needs ray[default] for the dashboard)."
	;;
*)
	die 3 "the Ray dashboard at $ADDRESS answered HTTP $probe to GET /api/version; is RAY_ADDRESS the dashboard URL (port 8265 by default)?"
	;;
esac

# ---------------------------------------------------------------- MLflow tracking URI
[[ -n ${MLFLOW_TRACKING_URI:-} ]] ||
	die 2 "MLFLOW_TRACKING_URI is not set: a job's own working directory is temporary, so results need a tracking server (start one with cluster/mlflow-server.sh, then export MLFLOW_TRACKING_URI=http://HOST:5000)."
case $MLFLOW_TRACKING_URI in
sqlite:////* | file:///* | http://* | https://* | postgresql*://* | postgres://* | mysql*://* | mssql*://*) ;;
sqlite:* | file:*) die 2 "MLFLOW_TRACKING_URI=$MLFLOW_TRACKING_URI is a relative path: the job runs in a temporary copy of this directory, so results would be lost; use a tracking server (http://HOST:5000) or an absolute path (sqlite:////ABS/PATH.db)." ;;
*) die 2 "MLFLOW_TRACKING_URI=$MLFLOW_TRACKING_URI: expected http(s)://HOST:PORT, a postgresql/mysql/mssql URL or sqlite:////ABS/PATH.db." ;;
esac
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ ${SUBMIT_SKIP_CHECK:-0} != 1 ]]; then
	case $MLFLOW_TRACKING_URI in
	sqlite:////* | file:///*)
		echo "cluster/submit.sh: note: $MLFLOW_TRACKING_URI is a path on the cluster's head node (where the driver runs); it must be on storage that node sees." >&2
		;;
	*)
		if ! msg=$(python3 "$HERE/check_tracking.py" "$MLFLOW_TRACKING_URI" --attempts 2 2>&1); then
			die 3 "${msg} Nothing was submitted. (SUBMIT_SKIP_CHECK=1 skips this check when only the cluster can reach the URI.)"
		fi
		;;
	esac
fi

# ---------------------------------------------------------------- runtime environment
SUBMIT_ID=${SUBMIT_ID:-sweep-${GRID}-$(date +%Y%m%d-%H%M%S)-$RANDOM}
RUNTIME_ENV=$(python3 - <<'EOF'
import json, os

env = {"MLFLOW_TRACKING_URI": os.environ["MLFLOW_TRACKING_URI"]}
# The tracking server's client settings travel with the job when set here (note: the job's
# environment is visible to anyone who can open the Ray dashboard).
for name in (
    "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_INSECURE_TLS", "MLFLOW_TRACKING_SERVER_CERT_PATH",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH", "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
):
    if os.environ.get(name):
        env[name] = os.environ[name]
print(json.dumps({
    "env_vars": env,
    "excludes": [
        ".git", ".venv", "venv", "mlruns.db", "mlruns.db-*", "mlruns", "mlartifacts",
        "outputs", "multirun", "report", "__pycache__", "*.pyc", ".pytest_cache",
        ".ruff_cache", "*.egg-info", "mlflow-server", ".ray-token-*", ".whl", ".gl", ".devout",
    ],
}))
EOF
)

# On the cluster: check the tracking server from the head (where the driver runs) first, so an
# unreachable server fails the job in seconds with the URI named, then run the sweep.
# shellcheck disable=SC2016  # expanded by the job's bash, not here
JOB_SCRIPT='py=$1; shift; "$py" cluster/check_tracking.py "$MLFLOW_TRACKING_URI" && exec "$py" -m sweep "$@"'

ENTRY_ARGS=()
if [[ -n ${SUBMIT_ENTRYPOINT_RESOURCES:-} ]]; then
	ENTRY_ARGS+=(--entrypoint-resources "$SUBMIT_ENTRYPOINT_RESOURCES")
fi

echo "cluster/submit.sh: submitting '$SUBMIT_ID' to $ADDRESS${TOKEN_SOURCE:+ (token from $TOKEN_SOURCE)}; results -> $MLFLOW_TRACKING_URI" >&2

# Ray exposes no endpoint that says whether the head's job agent has registered (it does so
# late on a busy head), so the submission is the probe: the dashboard waits 10 s for the agent
# and, without one, answers 500 "No available agent to submit job" having created nothing.
# That one answer is retried (same submission id) until SUBMIT_AGENT_TIMEOUT seconds have
# passed; any other failure ends the script at once.
submitted=0
start=-1 # when the first refusal came: the deadline bounds the wait for the agent
attempt=0
while :; do
	attempt=$((attempt + 1))
	set +e
	out=$(ray job submit --no-wait --address "$ADDRESS" --submission-id "$SUBMIT_ID" --working-dir . \
		--runtime-env-json "$RUNTIME_ENV" "${ENTRY_ARGS[@]}" \
		-- bash -c "$JOB_SCRIPT" dualsweep-job "${SWEEP_PYTHON:-python}" "+grid=$GRID" "$@" 2>&1)
	submit_rc=$?
	set -e
	if [[ $submit_rc -eq 0 ]]; then
		printf '%s\n' "$out" >&2
		((attempt > 1)) &&
			echo "cluster/submit.sh: submitted on attempt $attempt, $((SECONDS - start)) s after the first refusal (the job agent is up)" >&2
		submitted=1
		break
	fi
	if [[ $out != *"No available agent to submit job"* ]]; then
		printf '%s\n' "$out" >&2
		die 3 "ray job submit failed (exit $submit_rc, its message is above); nothing was submitted."
	fi
	((start >= 0)) || start=$SECONDS
	if ((SECONDS - start >= AGENT_TIMEOUT)); then
		die 3 "Ray's job agent on the head at $ADDRESS did not come up within SUBMIT_AGENT_TIMEOUT=$AGENT_TIMEOUT s (it answered 'No available agent to submit job' to each of $attempt submissions); nothing was submitted: see dashboard_agent.log in the head's Ray session logs, or raise SUBMIT_AGENT_TIMEOUT."
	fi
	((attempt == 1)) &&
		echo "cluster/submit.sh: waiting for Ray's job agent on the head (the dashboard answered 'No available agent to submit job'); submitting again for up to SUBMIT_AGENT_TIMEOUT=$AGENT_TIMEOUT s" >&2
	sleep 1 # poll interval; each attempt also waits up to 10 s for the agent on the dashboard's side
done
((submitted))

trap 'echo "cluster/submit.sh: interrupted; the job keeps running on the cluster (stop it: ray job stop --address $ADDRESS $SUBMIT_ID)" >&2; exit 130' INT
set +e
ray job logs --follow --address "$ADDRESS" "$SUBMIT_ID"
logs_rc=$?
set -e

# `ray job submit` exits 0 for a STOPPED job as well: ask for the final status.
# It prints "Job 'ID' succeeded" / "failed" / "was stopped", else "Status for job 'ID': STATUS".
status_text=$(ray job status --address "$ADDRESS" "$SUBMIT_ID" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' || true)
case $status_text in
*"Job '$SUBMIT_ID' succeeded"*) status=SUCCEEDED ;;
*"Job '$SUBMIT_ID' was stopped"*) status=STOPPED ;;
*"Job '$SUBMIT_ID' failed"*) status=FAILED ;;
*) status=$(printf '%s\n' "$status_text" | sed -n "s/.*Status for job '$SUBMIT_ID': *\([A-Z]*\).*/\1/p" | tail -n 1) ;;
esac
case $status in
SUCCEEDED)
	echo "cluster/submit.sh: job $SUBMIT_ID SUCCEEDED" >&2
	exit 0
	;;
FAILED | STOPPED)
	echo "cluster/submit.sh: job $SUBMIT_ID $status (logs: ray job logs --address $ADDRESS $SUBMIT_ID)" >&2
	exit 1
	;;
*)
	echo "cluster/submit.sh: job $SUBMIT_ID status '${status:-unknown}' (ray job logs exited $logs_rc)" >&2
	[[ $logs_rc -ne 0 ]] && exit "$logs_rc"
	exit 1
	;;
esac
