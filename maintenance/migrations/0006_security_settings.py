# Local Configuration › Security (issue 15): plain HTTP on 9080, HSTS, the session timeout.

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('maintenance', '0005_webui_settings'),
    ]

    operations = [
        migrations.CreateModel(
            name='SecuritySettings',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('http_redirect', models.BooleanField(default=False, help_text="Answer plain HTTP on port 9080 (the guide's “WebUI - HTTP”, disabled by default) with a redirect to HTTPS on 9443; it never serves a page.", verbose_name='HTTP to HTTPS Redirect')),
                ('hsts', models.BooleanField(default=True, help_text="Tell browsers to use only HTTPS for this appliance's name for the time below (browsers ignore it for addresses and for a certificate they warn about).", verbose_name='HTTP Strict Transport Security')),
                ('hsts_max_age', models.PositiveIntegerField(default=31536000, validators=[django.core.validators.MinValueValidator(300, 'At least %(limit_value)s seconds.'), django.core.validators.MaxValueValidator(63072000, 'At most %(limit_value)s seconds (two years).')], verbose_name='HSTS Max Age (seconds)')),
                ('session_timeout', models.PositiveSmallIntegerField(default=30, help_text='A session without a request from its user for this long ends; pages that refresh themselves do not count.', validators=[django.core.validators.MinValueValidator(1, 'At least %(limit_value)s minute.'), django.core.validators.MaxValueValidator(720, 'At most %(limit_value)s minutes (twelve hours).')], verbose_name='Session Timeout (minutes)')),
            ],
            options={
                'verbose_name': 'security settings',
                'verbose_name_plural': 'security settings',
            },
        ),
    ]
