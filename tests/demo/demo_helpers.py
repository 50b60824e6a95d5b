"""Helpers of the demo tests: serve a Gradio app on a free local port."""

import socket


def free_port() -> int:
    """A local TCP port that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(app) -> str:
    """Launch ``app`` on a free local port without blocking (no share link); returns its URL."""
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, share=False)
    return f"http://127.0.0.1:{port}/"
