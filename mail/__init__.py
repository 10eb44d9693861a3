"""Email: rendering notifications with Jinja2 templates and sending them with aiosmtplib."""
