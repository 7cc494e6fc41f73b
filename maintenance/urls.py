from appliance.navigation import not_built_urls

maintenance_patterns = not_built_urls("maintenance")
