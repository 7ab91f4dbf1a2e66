# SMS Blossom recipes. `./dev` creates the virtualenv and installs on first use.

default: up

# Run API and worker in one process (embedded Postgres when DATABASE_URL is unset)
up:
    ./dev up

# Lint, layer contract and the whole test suite
test *args:
    ./dev test {{args}}

# ruff and the import-linter layer contract only
lint:
    ./dev lint

# Apply migrations up to head
migrate:
    ./dev db upgrade

# Run the worker on every queue
worker *args:
    ./dev worker {{args}}

# Queue throughput benchmark (prints figures; not a test)
bench *args:
    ./dev bench {{args}}

# Format the code
fmt:
    .venv/bin/ruff format src tests migrations bench
    .venv/bin/ruff check --fix src tests migrations bench
