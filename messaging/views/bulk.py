"""Dashboard views (placeholder: filled by the address book work)."""

urlpatterns: list = []
