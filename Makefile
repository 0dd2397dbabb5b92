# Two commands do all the set-up: `make demo` and `make test`.
# They bootstrap uv into .tools/ (pinned), then install the locked dependencies into .venv/.
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := .venv
# Installed packages ship compiled bytecode: every server, worker and CLI process then starts in
# ~1.5 s instead of ~4.5 s (where PYTHONDONTWRITEBYTECODE is set nothing else would cache it).
export UV_COMPILE_BYTECODE := 1
RUN := $(UV) run --frozen --python $(PYTHON)

.PHONY: demo test lint typecheck pytest bench setup browser java clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

.venv/.synced: $(UV) uv.lock pyproject.toml setup.py src/dataflow/invoices/nfe/_read.pyx
	$(UV) sync --frozen --python $(PYTHON) --quiet
	touch $@

setup: .venv/.synced

demo: setup
	$(RUN) dataflow demo

lint: setup
	$(RUN) ruff check src tests benchmarks
	$(RUN) ruff format --check src tests benchmarks

typecheck: setup
	$(RUN) mypy

# The console's browser tests drive Debian's headless Chromium (Playwright cannot download its
# own browser here): installed when missing, so a machine without it fails loudly, never skips.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

# The Spark tests (release build and ingestion on Spark local mode) need a Java 17+ runtime:
# a machine without one fails here with the reason, never skips them.
java:
	@v=$$(java -version 2>&1 | head -1); case "$$v" in \
		*'"'1[7-9]*|*'"'2[0-9]*) ;; \
		*) echo "make test needs Java 17 or later for the Spark tests (apt-get install" \
			"openjdk-17-jre-headless); java -version says: $${v:-no java on PATH}" >&2; exit 1;; \
	esac

pytest: setup browser java
	$(RUN) pytest -q -n 2 --dist loadgroup

test: lint typecheck pytest

bench: setup
	$(RUN) python -m benchmarks

clean:
	rm -rf .venv .tools var .mypy_cache .pytest_cache .ruff_cache build src/dataflow/invoices/nfe/_read.*.so
