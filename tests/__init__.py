"""Tests for django-broadcasting."""
