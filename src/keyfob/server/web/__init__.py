"""The self-service and admin web pages: server-rendered Jinja2, a small stylesheet, a little
vanilla JavaScript (countdown, copy), no inline scripts, a strict Content-Security-Policy."""
