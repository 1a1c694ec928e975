from pdam import create_app

app = create_app()
