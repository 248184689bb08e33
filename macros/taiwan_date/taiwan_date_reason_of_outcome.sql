{% macro taiwan_date_reason_of_outcome(outcome) -%}
    case when left({{ outcome }}, 1) = '!' then substr({{ outcome }}, 2) end
{%- endmacro %}
