{#- Layers land in schemas named for them (staging, intermediate, marts, reference), not in
    <target schema>_<layer>: Mary and psql users see stable names. Models without a custom
    schema use the target's schema. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
