from accounts.tenancy import Tenant, TenantConsumer
from crm.live import org_group


class OrganizationEventsConsumer(TenantConsumer):
    """``/ws/o/<org_slug>/events/``: the organization-wide live feed every dashboard page opens."""

    min_role = "viewer"

    def groups_for(self, tenant: Tenant) -> list[str]:
        return [org_group(tenant.organization.pk)]
