#!/usr/bin/env bash
# Usage: cluster/mlflow-server.sh [--backend URI] [--artifacts DIR|URI] [--host HOST] [--port PORT]
#                                 [-- MORE_MLFLOW_SERVER_OPTIONS...]
#
# Starts an MLflow tracking server in the foreground (it replaces this shell, so its pid is
# this script's pid; stop it with Ctrl-C or `kill PID`).
#
#   --backend URI     backend store of runs, params, metrics and tags:
#                       sqlite:///ABS/PATH.db   (default: sqlite:///$PWD/mlflow-server/mlflow.db)
#                       postgresql://USER:PASSWORD@HOST:5432/DB   (needs psycopg2:
#                         pip install 'dualsweep[postgres]'; the database must exist, MLflow
#                         creates its tables on first start; postgresql+psycopg2:// is used
#                         when psycopg2 is the driver installed)
#                     SQLite is fine for one driver at a time; use PostgreSQL once several
#                     sweeps or users write to the same server.
#   --artifacts D     where the server stores artifacts it serves to clients
#                     (--artifacts-destination; default: $PWD/mlflow-server/artifacts; may be s3://...)
#   --host HOST       interface to bind (default 127.0.0.1: only this machine can connect)
#   --port PORT       (default 5000)
#   --workers N       server worker processes (default 4). With N > 1 the server runs under
#                     gunicorn: MLflow's default server, uvicorn, binds its socket itself when it
#                     runs several workers and then sets no TCP_NODELAY, so each kept-alive
#                     response waits ~40 ms on a delayed ACK (bench/recording.py measures it);
#                     gunicorn sets TCP_NODELAY. N = 1 runs uvicorn (which sets it).
#   --app NAME        the server app (default dualsweep: MLflow's server plus batched trial writes,
#                     sweep/serverapp.py — a driver then records a group of trials per request
#                     instead of 3 requests per trial; needs this project installed in the
#                     server's environment). `--app mlflow` runs the stock server; `--app
#                     basic-auth` MLflow's authenticated one (drivers fall back to 3 requests/trial);
#                     `--app dualsweep-auth` (the default with a --host beyond loopback) both:
#                     basic-auth users, the dualsweep routes needing EDIT on the experiment
#                     (pip install 'dualsweep[auth]'; MLFLOW_AUTH_ADMIN_PASSWORD on first start).
#   -- ...            passed to `mlflow server` unchanged, replacing the --workers choice above
#                     (e.g. -- --workers 1)
#
# Clients then use MLFLOW_TRACKING_URI=http://HOST:PORT. The sweep's driver is the only process
# that talks to MLflow, so running the server on the Ray head node and keeping the default
# 127.0.0.1 is enough for cluster jobs (MLFLOW_TRACKING_URI=http://127.0.0.1:5000 in the job).
#
# Exposing it safely: the server has no authentication by default and anyone who can connect
# can read and delete every experiment. Prefer an SSH tunnel to a server bound to 127.0.0.1
# (ssh -N -L 5000:127.0.0.1:5000 HEAD, then http://127.0.0.1:5000 on your machine). If other
# machines must connect directly, bind to the private cluster interface only (never 0.0.0.0
# on a public network), pass `-- --allowed-hosts HOST:PORT`, and put TLS plus authentication
# in front (a reverse proxy, or `-- --app-name basic-auth`).
#
# Example (PostgreSQL on the same machine):
#   cluster/mlflow-server.sh --backend postgresql://mlflow:secret@127.0.0.1:5432/mlflow
set -euo pipefail

die() {
	printf 'cluster/mlflow-server.sh: %s\n' "$*" >&2
	exit 2
}

BACKEND=""
ARTIFACTS=""
HOST=127.0.0.1
PORT=5000
WORKERS=4
APP=""
while [[ $# -gt 0 ]]; do
	case $1 in
	--backend)
		[[ $# -ge 2 ]] || die "--backend needs a URI"
		BACKEND=$2
		shift 2
		;;
	--artifacts)
		[[ $# -ge 2 ]] || die "--artifacts needs a directory or URI"
		ARTIFACTS=$2
		shift 2
		;;
	--host)
		[[ $# -ge 2 ]] || die "--host needs an interface address"
		HOST=$2
		shift 2
		;;
	--port)
		[[ $# -ge 2 ]] || die "--port needs a number"
		PORT=$2
		shift 2
		;;
	--workers)
		[[ $# -ge 2 ]] || die "--workers needs a number"
		WORKERS=$2
		shift 2
		;;
	--app)
		[[ $# -ge 2 ]] || die "--app needs a name (dualsweep, mlflow or basic-auth)"
		APP=$2
		shift 2
		;;
	-h | --help)
		sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
		exit 0
		;;
	--)
		shift
		break
		;;
	*) die "unknown option '$1' (options for mlflow server itself go after --)" ;;
	esac
done
[[ $PORT =~ ^[0-9]+$ && $PORT -ge 1 && $PORT -le 65535 ]] || die "--port must be 1..65535 (got '$PORT')"
[[ $WORKERS =~ ^[0-9]+$ && $WORKERS -ge 1 ]] || die "--workers must be a positive number (got '$WORKERS')"
if [[ $# -eq 0 ]]; then
	if [[ $WORKERS -gt 1 ]]; then
		set -- --workers "$WORKERS" --gunicorn-opts "--keep-alive 30"
	else
		set -- --workers 1
	fi
fi

command -v mlflow >/dev/null 2>&1 || die "the 'mlflow' command is not on PATH (activate the project's .venv)."
# the interpreter mlflow runs under (its driver packages and this project must be there)
py=$(head -n 1 "$(command -v mlflow)" | sed -n 's/^#! *//p' | awk '{print $1}')
[[ -x $py ]] || py=python3
case $HOST in
127.0.0.1 | localhost | ::1) APP=${APP:-dualsweep} ;;
*) APP=${APP:-dualsweep-auth} ;; # reachable from other machines: users and permissions
esac
APP_OPTS=()
case $APP in
mlflow) ;;
*)
	if [[ $APP == dualsweep* ]] && ! "$py" -c "import sweep.serverapp" 2>/dev/null; then
		die "--app $APP needs this project installed in mlflow's environment (pip install -e . there), or use --app mlflow."
	fi
	APP_OPTS=(--app-name "$APP")
	if [[ $APP == *auth ]]; then
		"$py" -c "import flask_wtf" 2>/dev/null || die "--app $APP needs MLflow's auth extra: pip install 'dualsweep[auth]' (Flask-WTF)."
		# one static key for every worker (CSRF), and the user database created once, here,
		# before the workers start (several workers creating it raced: "table users already exists")
		MLFLOW_FLASK_SERVER_SECRET_KEY=${MLFLOW_FLASK_SERVER_SECRET_KEY:-$("$py" -c 'import secrets; print(secrets.token_hex(32))')}
		export MLFLOW_FLASK_SERVER_SECRET_KEY
		if ! out=$("$py" -c "from mlflow.server.auth import bootstrap_admin_user as b; b()" 2>&1); then
			printf '%s\n' "$out" | tail -n 1 >&2
			die "--app $APP: MLflow's user database could not be prepared (above); on a first start set MLFLOW_AUTH_ADMIN_PASSWORD."
		fi
	fi
	if [[ $APP == dualsweep-auth ]]; then
		export DUALSWEEP_SERVER_AUTH=1
		APP_OPTS=(--app-name dualsweep)
	fi
	;;
esac

if [[ -z $BACKEND ]]; then
	mkdir -p "$PWD/mlflow-server"
	BACKEND="sqlite:///$PWD/mlflow-server/mlflow.db"
fi
if [[ -z $ARTIFACTS ]]; then
	ARTIFACTS="$PWD/mlflow-server/artifacts"
fi
case $ARTIFACTS in
*://*) ;;
*) mkdir -p "$ARTIFACTS" ;;
esac

case $BACKEND in
sqlite:///*) ;;
postgresql://* | postgres://* | postgresql+*://*)
	# mlflow's interpreter needs a PostgreSQL driver; SQLAlchemy 2.1 takes psycopg
	# (v3) for a bare postgresql:// URL, so name psycopg2 when only that one is installed
	case $BACKEND in
	postgresql+*) ;;
	*)
		if ! "$py" -c "import psycopg" 2>/dev/null && "$py" -c "import psycopg2" 2>/dev/null; then
			BACKEND="postgresql+psycopg2://${BACKEND#*://}"
		fi
		;;
	esac
	"$py" -c "import psycopg2" 2>/dev/null || "$py" -c "import psycopg" 2>/dev/null ||
		die "a PostgreSQL backend needs a driver in mlflow's environment: pip install 'dualsweep[postgres]' (psycopg2-binary)."
	;;
mysql* | mssql*) ;;
*) die "--backend must be sqlite:///ABS/PATH.db or a postgresql://, mysql:// or mssql:// URL (got '$BACKEND')" ;;
esac

case $HOST:$APP in
127.0.0.1:* | localhost:* | ::1:* | *:*auth) ;;
*)
	cat >&2 <<EOF
cluster/mlflow-server.sh: WARNING: binding to $HOST exposes an unauthenticated server to
every machine that can reach $HOST:$PORT. Prefer the default 127.0.0.1 with an SSH tunnel;
otherwise keep it on a private network, add '-- --allowed-hosts $HOST:$PORT', and put TLS and
authentication in front of it (see the comment at the top of this script).
EOF
	;;
esac

# MLflow 3's server-side job runner (GenAI evaluation, prompt optimisation: seven extra
# processes) is not needed to record sweeps; MLFLOW_SERVER_ENABLE_JOB_EXECUTION=true turns it on.
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}
# MLflow's usage telemetry (a thread posting to the internet) is off unless the environment says
export MLFLOW_DISABLE_TELEMETRY=${MLFLOW_DISABLE_TELEMETRY:-true}

# never print a password from the backend URI
shown=$(printf '%s' "$BACKEND" | sed -E 's#(://[^:/@]+):[^@]*@#\1:***@#')
echo "cluster/mlflow-server.sh: backend $shown, artifacts $ARTIFACTS, app $APP, listening on http://$HOST:$PORT" >&2
exec mlflow server --backend-store-uri "$BACKEND" --artifacts-destination "$ARTIFACTS" \
	--serve-artifacts --host "$HOST" --port "$PORT" "${APP_OPTS[@]}" "$@"
