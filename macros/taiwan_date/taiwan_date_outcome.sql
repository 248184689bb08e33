{#-
    Both answers of one parse, for a model that needs the date and the reason of many rows:
    the date as ISO text (YYYY-MM-DD), or '!' and the reason ('!unparseable'). Split it with
    taiwan_date_of_outcome and taiwan_date_reason_of_outcome in a later CTE; parsing twice
    (taiwan_date and taiwan_date_reason) costs twice.
-#}
{% macro taiwan_date_outcome(value, earliest=none, latest=none) -%}
    {{ postgres__taiwan_date_parsed(value, earliest, latest, 'outcome') }}
{%- endmacro %}
