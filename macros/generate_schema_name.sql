{#- Layers land in schemas named for them (staging, intermediate, marts, reference,
    validation), not in <target schema>_<layer>: Mary and psql users see stable names.
    Models without a custom schema use the target's schema.

    var('schema_suffix') builds every layer into shadow schemas instead (marts__shadow ...):
    `luckygas migrate` builds there and then moves the relations into the live schemas in
    one transaction, so readers never see customers and deliveries half-built. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}{{ var('schema_suffix', '') }}
    {%- endif -%}
{%- endmacro %}
