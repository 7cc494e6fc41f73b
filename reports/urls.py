from appliance.navigation import not_built_urls

view_patterns = not_built_urls("view")
reports_patterns = not_built_urls("reports")
logs_patterns = not_built_urls("logs")
support_patterns = not_built_urls("support")
