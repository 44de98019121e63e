from vace_server.cli import app

app()
