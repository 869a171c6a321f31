#!/usr/bin/python3
"""A scheduler's step, DAG style: submit an ingestion run, wait for it, fail the step if it fails.

    OUTPOST_BOOTSTRAP=broker:9092 examples/scheduler_step.py datahub-ingest --recipe recipe.yml
    OUTPOST_BOOTSTRAP=broker:9092 examples/scheduler_step.py sql-probe host=db.internal

In Airflow this is the body of a PythonOperator (or a @task); in cron or a CI job, the script
itself. The step's exit status says how the run ended (0 only for SUCCEEDED), and the run's end
and the end of its output are printed, so the scheduler's log shows why it failed.
"""

import argparse
import os
import sys

from outpost_client import Client, WaitTimeout, exit_status_of, state_name


def run_step(job_type, args, recipe_path, timeout_s=6 * 3600):
    client = Client(os.environ.get("OUTPOST_BOOTSTRAP", "127.0.0.1:9092"),
                    prefix=os.environ.get("OUTPOST_TOPICS_PREFIX", "outpost."))
    try:
        recipe = open(recipe_path, "rb").read() if recipe_path else None
        run_id = client.submit(job_type, args=args, recipe=recipe, requested_by="scheduler_step.py",
                               labels={"scheduler": "example"})
        print(f"submitted run {run_id} ({job_type})", flush=True)
        try:
            end = client.wait(run_id, timeout=timeout_s)
        except WaitTimeout as e:
            print(e, file=sys.stderr)
            return 7
        print(f"run {run_id} ended {state_name(end.state)}: "
              f"{end.message or 'exit ' + str(end.exit_code)}")
        if end.log_tail and exit_status_of(end.state) != 0:
            print("---- the end of its output ----\n" + end.log_tail, file=sys.stderr)
        return int(exit_status_of(end.state))
    finally:
        client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("job_type")
    parser.add_argument("args", nargs="*", help="template arguments NAME=VALUE")
    parser.add_argument("--recipe", help="file whose bytes become the recipe")
    a = parser.parse_args()
    sys.exit(run_step(a.job_type, dict(kv.split("=", 1) for kv in a.args), a.recipe))
