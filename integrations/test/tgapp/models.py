"""The Django models of the integration checks (tables created by
tests/integrations/run as the superuser: managed = False)."""

from django.db import models

# The tenant column is filled by the default tenant_guard.protect() gives it
# (the context's tenant): db_default makes Django send DEFAULT instead of a
# value. The expression here is only documentation (managed = False).
TENANT_DEFAULT = models.Func(function="tenant_guard.require_tenant_id", output_field=models.TextField())


class Project(models.Model):
    id = models.IntegerField(primary_key=True)
    tenant_id = models.TextField(db_default=TENANT_DEFAULT, editable=False)
    name = models.TextField()

    class Meta:
        app_label = "tgapp"
        db_table = "projects"
        managed = False


class Task(models.Model):
    tenant_id = models.TextField(db_default=TENANT_DEFAULT, editable=False)
    project = models.ForeignKey(Project, on_delete=models.DO_NOTHING, db_column="project_id")
    title = models.TextField()

    class Meta:
        app_label = "tgapp"
        db_table = "tasks"
        managed = False
