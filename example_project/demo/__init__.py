"""The example site around the chat: home, sign-up, notifications and the live dashboard."""
