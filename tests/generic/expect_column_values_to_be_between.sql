{#- Expectation: every non-NULL value of `column_name` lies in [min_value, max_value] (either
    bound may be omitted; strictly=true excludes the bounds). Returns the failing rows.
    dbt-expectations' test of the same name, written here because the dbt package hub is
    unreachable. -#}
{% test expect_column_values_to_be_between(
    model, column_name, min_value=none, max_value=none, strictly=false
) %}
    {%- set outside = [] -%}
    {%- if min_value is not none -%}
        {%- do outside.append(column_name ~ (' <= ' if strictly else ' < ') ~ min_value) -%}
    {%- endif -%}
    {%- if max_value is not none -%}
        {%- do outside.append(column_name ~ (' >= ' if strictly else ' > ') ~ max_value) -%}
    {%- endif %}

    select *
    from {{ model }}
    where {{ outside | join(' or ') if outside else 'false' }}

{% endtest %}
