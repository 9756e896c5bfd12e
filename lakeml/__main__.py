from lakeml.cli.main import app

app()
